//go:build unix

package supervisor

import (
	"os"
	"os/exec"
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
// process group when leaserun has that foreground, its stdin, stdout or
// stderr is the terminal, and neither stdin nor stdout is a pipe. Such a
// pipe means a pipeline ("leaserun -- make | less", "producer | leaserun --
// cmd"), whose other members share leaserun's process group: handing the
// foreground to the child would leave them in the background, and less, say,
// could no longer read the keyboard. It returns nil, changing nothing,
// otherwise.
func takeTerminal(cmd *exec.Cmd) *terminal {
	tty := -1
	for i, stdio := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		if stdio == nil {
			continue // the null device
		}
		f, ok := stdio.(*os.File)
		if !ok {
			if i < 2 {
				return nil // os/exec will make a pipe to copy it through
			}
			continue
		}
		fd := int(f.Fd())
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO && i < 2 {
			return nil
		}
		if tty < 0 {
			if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil && fg == unix.Getpgrp() {
				tty = fd
			}
		}
	}
	if tty < 0 {
		return nil // no terminal, or leaserun runs in the background
	}
	cmd.SysProcAttr.Foreground = true
	cmd.SysProcAttr.Ctty = tty // with Foreground, a descriptor of the parent's
	return &terminal{fd: tty, pgrp: unix.Getpgrp()}
}

// ignoreTTOU keeps SIGTTOU from stopping leaserun once the child runs:
// stopped, leaserun would stop its guard and renewals while the child ran on
// past the lease. With the foreground handed to the child, leaserun is a
// background process, and with "stty tostop" its next log line raises
// SIGTTOU. Ignored, not caught (as SIGTTIN is, see heldOff): caught, the
// one raised by leaserun's own write to the terminal would restart the write
// forever. Not before the child starts, which would inherit the ignored
// disposition; and the Go runtime cannot restore it, so SIGTTOU stays
// ignored in this process after Run.
func ignoreTTOU() { signal.Ignore(syscall.SIGTTOU) }

// restore gives the terminal back to leaserun's process group, from the
// background: with SIGTTOU ignored, so that the call is not stopped.
func (t *terminal) restore() {
	if t == nil {
		return
	}
	signal.Ignore(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(t.fd, unix.TIOCSPGRP, t.pgrp)
}
