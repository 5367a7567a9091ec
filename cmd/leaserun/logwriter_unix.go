//go:build unix && !linux

package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// quietFile returns a duplicate of f: the Go runtime raises SIGPIPE itself
// for a write to descriptor 1 or 2 that fails with EPIPE, not for others.
// (Here leaserun doesn't catch SIGPIPE, and the Go runtime drops the one
// the kernel raises.) If f can't be duplicated, it returns f.
func quietFile(f *os.File) io.WriteCloser {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nopCloser{f}
	}
	return os.NewFile(uintptr(fd), f.Name())
}
