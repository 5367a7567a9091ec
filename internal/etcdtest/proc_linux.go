package etcdtest

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/leaserun/leaserun/internal/procstat"
)

// sysProcAttr puts a member in its own process group, so that a signal
// sent to it reaches nothing else, and kills it when the test dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// stopped reports whether every thread of process pid is stopped, as
// SIGSTOP leaves it (or stopped under a tracer, or gone).
func stopped(pid int) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue // the thread exited
		}
		st, err := procstat.Parse(b)
		if err != nil || st.State != 'T' && st.State != 't' && st.Alive() {
			return false
		}
	}
	return true
}
