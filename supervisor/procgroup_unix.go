//go:build unix

package supervisor

import (
	"os"
	"syscall"
)

// processGroups: the child gets a process group of its own, which can be
// signalled as a whole.
const processGroups = true

// setProcessGroup puts the child in a new process group whose id is its pid,
// so that stopping it stops what it started (sh -c 'a | b').
func setProcessGroup(attr *syscall.SysProcAttr) { attr.Setpgid = true }

// signalGroup sends sig to every process of the group pgid.
func signalGroup(pgid int, sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return syscall.EINVAL
	}
	return syscall.Kill(-pgid, s)
}

// hangUp sends the group SIGHUP, then SIGCONT, as the kernel does to a
// stopped process group that becomes orphaned.
func (g *procGroup) hangUp() {
	g.signal(syscall.SIGHUP)
	g.signal(syscall.SIGCONT)
}
