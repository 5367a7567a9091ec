package cli

import (
	"io"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// quietFile returns a duplicate of f to write to from the calling goroutine,
// which it locks to its thread for good: the thread blocks SIGPIPE, so that
// a write to a broken pipe or socket fails with EPIPE and raises no signal
// the process could see (the kernel sends that SIGPIPE to the writing
// thread, where it stays pending, blocked, until the thread exits with the
// goroutine). Writing to a descriptor other than 1 or 2 keeps the Go runtime
// from raising SIGPIPE itself for EPIPE. If f can't be duplicated, it
// returns f.
func quietFile(f *os.File) io.WriteCloser {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nopCloser{f}
	}
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	var set unix.Sigset_t
	sigaddset(&set, unix.SIGPIPE)
	unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil)
	return os.NewFile(uintptr(fd), f.Name())
}

func sigaddset(set *unix.Sigset_t, sig unix.Signal) {
	n := uint(sig - 1)
	bits := uint(unsafe.Sizeof(set.Val[0]) * 8)
	set.Val[n/bits] |= 1 << (n % bits)
}
