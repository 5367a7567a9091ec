//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/procstat"
	"github.com/leaserun/leaserun/internal/sshfsrig"
)

// TestSSHFSTermDuringHungRelease: the child has exited and leaserun's
// release of the lease hangs in a stuck file server (its sftp-server is
// stopped). A TERM must still end leaserun at once, by the signal's default
// effect, as it would end any other program: leaserun catches the signals
// it forwards until it returns, and must let TERM go once the child is gone.
// As PID 1 of a PID namespace (a container's entrypoint), where the kernel
// drops a signal whose action is the default (and the Go runtime then exits
// 2), leaserun must exit 128+N by itself.
func TestSSHFSTermDuringHungRelease(t *testing.T) {
	t.Run("process", func(t *testing.T) { termDuringHungRelease(t, nil) })
	t.Run("pid 1", func(t *testing.T) {
		if why := scriptUnshareWhy(); why != "" {
			t.Skip(why)
		}
		termDuringHungRelease(t, []string{"unshare", "--pid", "--fork", "--mount-proc"})
	})
}

// termDuringHungRelease runs the test with leaserun started under prefix;
// with a prefix, leaserun is the prefix's only child.
func termDuringHungRelease(t *testing.T, prefix []string) {
	rig := sshfsrig.Start(t, 1)
	dir := t.TempDir() // local: the child's log and trigger must not hang with the mount
	log := filepath.Join(dir, "child.log")
	stop := filepath.Join(dir, "stop")
	holder := e2eStartLeaserun(t, dir, "holder", prefix,
		e2eChildEnv(log, e2eEnvHold+"=60s", e2eEnvHoldUntil+"="+stop),
		"--lease", filepath.Join(rig.Mounts[0].Path, "hung-release.lease"), "--log-level", "info")
	e2eWaitChildStart(t, 30*time.Second, log, holder)
	pid := holder.cmd.Process.Pid
	if prefix != nil {
		pid = onlyChild(t, pid)
	}

	server := rig.Mounts[0].ServerPID
	if err := syscall.Kill(server, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(server, syscall.SIGCONT)
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// leaserun logs the child's exit, then releases: the release hangs.
	e2ePoll(t, 30*time.Second, "the child's exit in leaserun's log", func() bool {
		return strings.Contains(holder.Stderr(), "child exited")
	})
	if holder.Exited() {
		t.Fatalf("leaserun exited although the file server is stopped; stderr:\n%s", holder.Stderr())
	}
	// The kernel gives the TERM to the main thread first; held by the
	// server, that thread would keep it from the Go runtime.
	e2ePoll(t, 10*time.Second, "a thread of leaserun held by the stopped server", func() bool {
		return len(threadsHeldByFUSE(t, pid)) > 0
	})
	if held := threadsHeldByFUSE(t, pid); slices.Contains(held, pid) {
		t.Fatalf("leaserun's main thread is held by the stopped server (held threads: %v)", held)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The TERM ends leaserun at once, but the thread whose request is
	// with the stopped server stays until the server answers (a FUSE
	// request already sent waits for its answer even for SIGKILL): until
	// then leaserun is a zombie that cannot be reaped.
	e2ePoll(t, 10*time.Second, "leaserun's exit on TERM", func() bool {
		s, err := procstat.Read(pid)
		return err != nil || s.State == 'Z'
	})
	syscall.Kill(server, syscall.SIGCONT)
	if st := holder.Wait(t, 30*time.Second); st != 128+int(syscall.SIGTERM) {
		t.Errorf("leaserun exited %d, want %d (by SIGTERM); stderr:\n%s", st, 128+int(syscall.SIGTERM), holder.Stderr())
	}
}

// onlyChild is the one child process of pid.
func onlyChild(t *testing.T, pid int) int {
	t.Helper()
	var kids []string
	e2ePoll(t, 10*time.Second, fmt.Sprintf("the child of %d", pid), func() bool {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		kids = strings.Fields(string(data))
		return len(kids) > 0
	})
	if len(kids) != 1 {
		t.Fatalf("process %d has children %v, want one", pid, kids)
	}
	child, err := strconv.Atoi(kids[0])
	if err != nil {
		t.Fatal(err)
	}
	return child
}

// threadsHeldByFUSE returns the threads of process pid that wait for a
// FUSE server: their wait channel (the kernel function they sleep in) is
// FUSE's request_wait_answer, or another of FUSE's (a kernel may inline
// that one into its caller).
func threadsHeldByFUSE(t *testing.T, pid int) []int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var held []int
	for _, task := range tasks {
		wchan, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", pid, task.Name()))
		if err != nil {
			continue // the thread is gone
		}
		w := string(wchan)
		if tid, err := strconv.Atoi(task.Name()); err == nil && (w == "request_wait_answer" || strings.Contains(w, "fuse")) {
			held = append(held, tid)
		}
	}
	return held
}
