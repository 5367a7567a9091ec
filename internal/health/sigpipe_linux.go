package health

import (
	"errors"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// noSigpipe wraps ln so that its connections write with MSG_NOSIGNAL: a
// write to a client that hung up fails with EPIPE and raises no SIGPIPE.
// The kernel raises a failed write's SIGPIPE on the writing thread, which
// for net/http is any of the Go runtime's; leaserun catches SIGPIPE to
// forward it to the child (supervisor.Config.ForwardSIGPIPE), and could
// not tell a probe that hung up from a SIGPIPE sent to it. Linux has no
// socket option for it (macOS's SO_NOSIGPIPE), only the flag of each
// send; Go's net package writes with write(2), so the connections send
// through their raw descriptors, waiting on the runtime's poller as
// net.Conn's Write does (deadlines included).
func noSigpipe(ln net.Listener) net.Listener { return sigpipeFreeListener{ln} }

type sigpipeFreeListener struct{ net.Listener }

func (l sigpipeFreeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	return &sigpipeFreeConn{TCPConn: tc, raw: raw}, nil
}

// sigpipeFreeConn is a TCP connection whose Write sends with MSG_NOSIGNAL.
// It embeds *net.TCPConn for the rest (Read, Close, deadlines, CloseWrite);
// ReadFrom, which the embedding would offer and which could write with
// sendfile or splice, is replaced by one that writes with Write.
type sigpipeFreeConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *sigpipeFreeConn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		var n int
		var serr error
		err := c.raw.Write(func(fd uintptr) bool {
			n, serr = unix.SendmsgN(int(fd), p[written:], nil, nil, unix.MSG_NOSIGNAL)
			return !errors.Is(serr, unix.EAGAIN)
		})
		if err == nil {
			err = serr
		}
		if n > 0 {
			written += n
		}
		if err != nil {
			return written, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
		}
	}
	return written, nil
}

// ReadFrom copies by Write (no sendfile or splice, which would write
// without the flag).
func (c *sigpipeFreeConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{c}, r)
}
