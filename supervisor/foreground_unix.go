//go:build unix

package supervisor

import (
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// terminal is a controlling terminal whose foreground leaserun handed to the
// child's process group, so that Ctrl-C reaches the child once (from the
// terminal, not also from leaserun) and a TTY program can read its terminal.
type terminal struct {
	fd   int
	pgrp int // leaserun's process group, the foreground before the child
}

// takeTerminal arranges for the child to start as the terminal's foreground
// process group, when stdin is a terminal whose foreground leaserun has. It
// returns nil, changing nothing, otherwise.
func takeTerminal(stdin io.Reader, attr *syscall.SysProcAttr) *terminal {
	f, ok := stdin.(*os.File)
	if !ok {
		return nil
	}
	fd := int(f.Fd())
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || fg != unix.Getpgrp() {
		return nil // not a terminal, or leaserun runs in the background
	}
	attr.Foreground = true
	attr.Ctty = 0 // stdin, in the child's descriptor table
	return &terminal{fd: fd, pgrp: fg}
}

// started is called once the child runs in the foreground: leaserun is now
// a background process of the terminal, and with "stty tostop" its next log
// line would stop it (SIGTTOU), guard and renewals with it, while the child
// runs on. So SIGTTOU is ignored until restore. (Not before the child
// starts: it would inherit the ignored disposition.)
func (t *terminal) started() {
	if t != nil {
		signal.Ignore(syscall.SIGTTOU)
	}
}

// restore gives the terminal back to leaserun's process group; SIGTTOU is
// ignored around the call, which leaserun makes from the background.
func (t *terminal) restore() {
	if t == nil {
		return
	}
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(t.fd, unix.TIOCSPGRP, t.pgrp)
}
