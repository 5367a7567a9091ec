// Package procstat reads the status of Linux processes from /proc/PID/stat
// (proc(5)): the one parser of that line for leaserun's code, tests and
// benchmarks.
package procstat

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// Stat is what leaserun reads of a process's /proc/PID/stat.
type Stat struct {
	PID   int
	Comm  string // the command's name, which may hold spaces and parentheses
	State byte   // 'R' running, 'S' sleeping, 'T' stopped, 'Z' zombie, 'X' dead, ...
	PPID  int    // the parent's pid
	PGRP  int    // the process group's id

	UTime, STime uint64 // CPU time in user and kernel mode, in clock ticks
	StartTime    uint64 // when the process started, in clock ticks after boot
}

// Alive reports whether the process runs: it is neither a zombie nor dead.
func (s Stat) Alive() bool { return s.State != 'Z' && s.State != 'X' }

var errMalformed = errors.New("procstat: malformed stat line")

// Parse parses the contents of a /proc/PID/stat file:
//
//	pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt
//	majflt cmajflt utime stime cutime cstime priority nice num_threads
//	itrealvalue starttime ...
//
// comm may hold anything, ")" and spaces included: it ends at the last ")".
func Parse(b []byte) (Stat, error) {
	line := string(b)
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return Stat{}, errMalformed
	}
	f := strings.Fields(line[end+1:]) // f[0] is field 3, state
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, errMalformed
	}
	s := Stat{Comm: line[open+1 : end], State: f[0][0]}
	var errs [6]error
	s.PID, errs[0] = strconv.Atoi(strings.TrimSpace(line[:open]))
	s.PPID, errs[1] = strconv.Atoi(f[1])
	s.PGRP, errs[2] = strconv.Atoi(f[2])
	s.UTime, errs[3] = strconv.ParseUint(f[11], 10, 64)
	s.STime, errs[4] = strconv.ParseUint(f[12], 10, 64)
	s.StartTime, errs[5] = strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return Stat{}, errMalformed
	}
	return s, nil
}

// Read reads the stat of process pid.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return Parse(b)
}

// All reads the stat of every process in /proc. A process that exits
// meanwhile is left out.
func All() ([]Stat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var all []Stat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := Read(pid); err == nil {
			all = append(all, s)
		}
	}
	return all, nil
}
