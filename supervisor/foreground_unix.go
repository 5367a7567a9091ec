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
// process group, when its stdin, stdout or stderr (the first that is) is a
// terminal whose foreground leaserun has: with stdin piped, a child that
// opens /dev/tty to read must not be a background process. It returns nil,
// changing nothing, otherwise.
func takeTerminal(cmd *exec.Cmd) *terminal {
	for i, stdio := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		f, ok := stdio.(*os.File)
		if !ok {
			continue
		}
		fd := int(f.Fd())
		fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		if err != nil || fg != unix.Getpgrp() {
			continue // not a terminal, or leaserun runs in the background
		}
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = i // the same terminal, in the child's descriptor table
		return &terminal{fd: fd, pgrp: fg}
	}
	return nil
}

// ignoreStops makes SIGTTIN and SIGTTOU harmless to leaserun once the child
// runs: stopped, leaserun would stop its guard and renewals while the child
// ran on past the lease. They come from a kill, or from the terminal: with
// the foreground handed to the child, leaserun is a background process, and
// with "stty tostop" its next log line would raise SIGTTOU. (Not before the
// child starts: it would inherit the ignored dispositions.)
func ignoreStops() { signal.Ignore(syscall.SIGTTIN, syscall.SIGTTOU) }

// resetStops undoes ignoreStops, for a later child of the same process.
func resetStops() { signal.Reset(syscall.SIGTTIN, syscall.SIGTTOU) }

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
