package supervisor

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/procstat"
)

// pgrpOrphaned reports whether this process's group is orphaned as POSIX
// has it: none of its members has a parent in another group of the same
// session, so no shell's job control is left that could continue it. Its
// parent is asked first, which settles the common cases (a shell's job,
// whose parent is the shell) in a few system calls; only otherwise are the
// group's other members looked for in /proc.
func pgrpOrphaned() bool {
	pgrp := unix.Getpgrp()
	sid, err := unix.Getsid(0)
	if err != nil {
		return false
	}
	links := func(ppid int) bool {
		if ppid <= 0 { // outside this PID namespace
			return false
		}
		pg, err1 := unix.Getpgid(ppid)
		s, err2 := unix.Getsid(ppid)
		return err1 == nil && err2 == nil && pg != pgrp && s == sid
	}
	if links(os.Getppid()) {
		return false
	}
	procs, err := procstat.All()
	if err != nil {
		return false // can't tell: not orphaned, nothing is done
	}
	for _, p := range procs {
		if p.PID != os.Getpid() && p.PGRP == pgrp && p.Alive() && links(p.PPID) {
			return false
		}
	}
	return true
}
