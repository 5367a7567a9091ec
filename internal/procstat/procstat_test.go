package procstat

import (
	"os"
	"runtime"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Stat
	}{
		{"1234 (sh) S 1 1234 1234 34816 1234 4194304 120 0 0 0 3 4 0 0 20 0 1 0 98765 2449408 218 " +
			"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			Stat{PID: 1234, Comm: "sh", State: 'S', PPID: 1, PGRP: 1234, UTime: 3, STime: 4, StartTime: 98765}},
		// comm holds spaces and parentheses, a closing one last of all.
		{"77 (a) b (c) ) Z 5 6 6 0 -1 4194560 0 0 0 0 10 20 0 0 20 0 1 0 42 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0",
			Stat{PID: 77, Comm: "a) b (c) ", State: 'Z', PPID: 5, PGRP: 6, UTime: 10, STime: 20, StartTime: 42}},
		{"9 () T 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1",
			Stat{PID: 9, Comm: "", State: 'T', StartTime: 1}},
	} {
		got, err := Parse([]byte(tc.line))
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"",
		"1 sh S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1", // no parentheses
		"1 (sh) S 1 1", // too short
		"x (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1",  // no pid
		"1 (sh) S p 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1",  // no ppid
		"1 (sh) SS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1", // no state
		"1 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -1", // no start time
	} {
		if got, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestRead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no /proc/PID/stat")
	}
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != os.Getpid() || s.PPID != os.Getppid() || !s.Alive() || s.StartTime == 0 {
		t.Errorf("Read(self) = %+v", s)
	}
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range all {
		found = found || p.PID == s.PID
	}
	if !found {
		t.Errorf("All() has no process %d", s.PID)
	}
}
