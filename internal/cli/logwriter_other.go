//go:build !linux

package cli

import (
	"io"
	"os"
	"os/signal"
	"syscall"
)

// quietFile returns f, and catches SIGPIPE for good: leaserun forwards no
// SIGPIPE here (see logwriter_linux.go), and caught, it is dropped, so that
// a write to a broken pipe fails with EPIPE and does not end leaserun, as
// the Go runtime otherwise ends a program whose write to descriptor 1 or 2
// does. (Caught, not ignored: the child gets SIGPIPE at its default.)
func quietFile(f *os.File) io.WriteCloser {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	return nopCloser{f}
}
