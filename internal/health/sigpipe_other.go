//go:build !linux

package health

import "net"

// noSigpipe returns ln: outside Linux leaserun forwards no SIGPIPE (a
// write's SIGPIPE need not be raised on the thread that wrote), and it
// catches SIGPIPE so that a failed write only fails (see internal/cli's quietFile).
func noSigpipe(ln net.Listener) net.Listener { return ln }
