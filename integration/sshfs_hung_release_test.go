//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/sshfsrig"
)

// TestSSHFSTermDuringHungRelease: the child has exited and leaserun's
// release of the lease hangs in a stuck file server (its sftp-server is
// stopped). A TERM must still end leaserun at once, by the signal's default
// effect, as it would end any other program: leaserun catches the signals
// it forwards until it returns, and must let TERM go once the child is gone.
func TestSSHFSTermDuringHungRelease(t *testing.T) {
	rig := sshfsrig.Start(t, 1)
	dir := t.TempDir() // local: the child's log and trigger must not hang with the mount
	log := filepath.Join(dir, "child.log")
	stop := filepath.Join(dir, "stop")
	holder := e2eStartLeaserun(t, dir, "holder", nil,
		e2eChildEnv(log, e2eEnvHold+"=60s", e2eEnvHoldUntil+"="+stop),
		"--lease", filepath.Join(rig.Mounts[0].Path, "hung-release.lease"))
	e2eWaitChildStart(t, 30*time.Second, log, holder)

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
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The TERM ends leaserun at once, but the thread whose request is
	// with the stopped server stays until the server answers (a FUSE
	// request already sent waits for its answer even for SIGKILL): until
	// then leaserun is a zombie that cannot be reaped.
	pid := holder.cmd.Process.Pid
	e2ePoll(t, 10*time.Second, "leaserun's exit on TERM", func() bool {
		return holder.Exited() || procState(pid) == "Z"
	})
	syscall.Kill(server, syscall.SIGCONT)
	if st := holder.Wait(t, 30*time.Second); st != 128+int(syscall.SIGTERM) {
		t.Errorf("leaserun exited %d, want %d (killed by SIGTERM); stderr:\n%s", st, 128+int(syscall.SIGTERM), holder.Stderr())
	}
}

// procState is the state letter of process pid in /proc/PID/stat ("Z" for
// a zombie), or "" if it cannot be read.
func procState(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	rest := string(data[strings.LastIndexByte(string(data), ')')+1:])
	if f := strings.Fields(rest); len(f) > 0 {
		return f[0]
	}
	return ""
}
