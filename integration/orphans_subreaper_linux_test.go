//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// e2eSubreaperMain is the subreaper role: as a child subreaper (a service
// manager, a container's init), it runs the command os.Args[1:] and waits
// for it; then it reports on stdout what that command left behind, which
// was reparented here when it exited: "left N" (zombies and live processes
// alike). It exits with the command's status, or 99 if anything was left.
func e2eSubreaperMain() int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper:", err)
		return 98
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper:", err)
		return 98
	}
	cmd.Wait()
	// The command's children were reparented here before its exit was
	// reported: whatever is here now, it left.
	left := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			break // ECHILD: nothing (more) left
		}
		if pid == 0 { // alive: kill it, and count it once reaped
			for _, p := range e2eChildrenOf(os.Getpid()) {
				syscall.Kill(p, syscall.SIGKILL)
			}
			syscall.Wait4(-1, &ws, 0, nil)
		}
		left++
	}
	fmt.Printf("left %d\n", left)
	if left > 0 {
		return 99
	}
	return cmd.ProcessState.ExitCode()
}

// e2eChildrenOf lists the processes whose parent is pid.
func e2eChildrenOf(pid int) []int {
	var kids []int
	for _, p := range scriptProcs() {
		if p.PPID == pid {
			kids = append(kids, p.PID)
		}
	}
	return kids
}

// Under a subreaper (systemd, a container's init), leaserun leaves nothing
// behind: the processes its command left in its process group are killed
// and reaped, those already dead (zombies) too, before leaserun exits. Which
// of them is still alive when leaserun looks is a race: the scenario is
// repeated.
func TestNothingLeftUnderASubreaper(t *testing.T) {
	bin, err := e2eTestBinary()
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 30
	for round := range rounds {
		lease := filepath.Join(t.TempDir(), "lease")
		cmd := exec.Command(bin, leaserunBin, "--lease", lease, "--",
			"sh", "-c", "sleep 100 & sleep 100 & sleep 100 & exit 3")
		cmd.Env = append(e2eBaseEnv(), e2eEnvRole+"=subreaper")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if code := waitStatus(t, cmd); code != 3 {
			t.Fatalf("round %d: exit status %d, want the child's 3:\n%s", round, code, out.String())
		}
		if !strings.Contains(out.String(), "left 0") {
			t.Fatalf("round %d: leaserun left processes behind:\n%s", round, out.String())
		}
	}
}
