package supervisor

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
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
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false // can't tell: not orphaned, nothing is done
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 3 || f[0] == "Z" || f[2] != strconv.Itoa(pgrp) {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && links(ppid) {
			return false
		}
	}
	return true
}
