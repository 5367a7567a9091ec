//go:build linux

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signalsPatience bounds the waits of these tests: it is reached only when
// what they wait for never happens.
const signalsPatience = 30 * time.Second

// waitStatus waits (bounded) for cmd, started, to exit, and returns its
// status as a shell reports it: 128+N if signal N killed it.
func waitStatus(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(signalsPatience):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s still running after %v", cmd.Path, signalsPatience)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// leaseState is what "leaserun status" says of the lease: held, released...
func leaseState(t *testing.T, lease string) string {
	t.Helper()
	out, _ := exec.Command(leaserunBin, "status", "--lease", lease, "--format", "{{.State}}").Output()
	return strings.TrimSpace(string(out))
}

// A stderr whose reader is gone ("leaserun ... 2>&1 | head -c 10") does not
// end leaserun: its log lines are dropped, the child runs to its end,
// leaserun exits with the child's status and releases the lease. Nor does
// leaserun's own failed write send the child a SIGPIPE. At the debug level
// leaserun logs every renewal: its writes keep failing while the child runs.
func TestBrokenStderr(t *testing.T) {
	dir := t.TempDir()
	lease, got := filepath.Join(dir, "lease"), filepath.Join(dir, "got")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd := exec.Command(leaserunBin, "--lease", lease, "--ttl", "3s", "--renew", "50ms", "--log-level", "debug", "--",
		"sh", "-c", `trap 'echo PIPE >> `+got+`' PIPE
			i=0; while [ $i -lt 20 ]; do sleep 0.05; i=$((i+1)); done
			exit 3`)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if code := waitStatus(t, cmd); code != 3 {
		t.Errorf("exit status %d, want the child's 3", code)
	}
	if b, err := os.ReadFile(got); err == nil {
		t.Errorf("the child got %q from leaserun's broken stderr", b)
	}
	if st := leaseState(t, lease); st != "released" {
		t.Errorf("the lease is %q, want released", st)
	}
}
