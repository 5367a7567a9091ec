package supervisor

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/procstat"
)

// becomeSubreaper makes this process a child subreaper: what the child
// leaves behind when its parent dies, even outside its process group (a
// daemon that called setsid), is reparented here rather than to PID 1, so
// that killOrphans can find it.
func becomeSubreaper() bool {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil
}

// killOrphans SIGKILLs and reaps every remaining child of this process, and
// then the children those leave behind (reparented here in turn), so that
// nothing the command started runs on once the lease is released, nor
// stays behind unreaped: those already dead (zombies, such as what the
// command left in its process group, killed when it exited) are reaped too.
// It runs after the command itself has been reaped, when the only children
// left are orphans.
func killOrphans() {
	for range 100 { // each round kills one generation
		if !hasChildren() {
			return // the common case, and far cheaper than reading /proc
		}
		pids := children()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL) // nothing, to a zombie
		}
		for _, pid := range pids {
			wait4(pid, 0) // ECHILD if the reaper got there first
		}
	}
}

// hasChildren reports whether this process has any child, running or not
// yet reaped. As a subreaper it has none once the command and everything it
// started are gone: an orphan is reparented here before its parent's exit is
// reported.
func hasChildren() bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err != unix.ECHILD
		}
	}
}

// children lists this process's children, zombies included.
func children() []int {
	procs, _ := procstat.All()
	var pids []int
	for _, p := range procs {
		if p.PPID == os.Getpid() {
			pids = append(pids, p.PID)
		}
	}
	return pids
}
