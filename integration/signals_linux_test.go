//go:build linux

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/procstat"
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

// Every signal leaserun can catch reaches the child once: those the kernel
// raises for a fault too when they are sent with kill (SIGABRT is systemd's
// watchdog signal), SIGPIPE, and SIGURG where leaserun runs with the Go
// runtime's asynchronous preemption off (GODEBUG=asyncpreemptoff=1, so that
// the runtime sends none of its own). leaserun carries on after each, and
// exits with the child's status once the child ends.
func TestEverySignalForwarded(t *testing.T) {
	sigs := []string{"ABRT", "ILL", "TRAP", "BUS", "FPE", "SEGV", "SYS", "PIPE", "URG", "USR1", "ALRM", "WINCH"}
	dir := t.TempDir()
	lease, got, ready, stop := filepath.Join(dir, "lease"), filepath.Join(dir, "got"), filepath.Join(dir, "ready"), filepath.Join(dir, "stop")
	var script strings.Builder
	for _, s := range sigs {
		script.WriteString(`trap 'echo ` + s + ` >> ` + got + `' ` + s + "\n")
	}
	script.WriteString(`touch ` + ready + `
		i=0; while [ ! -e ` + stop + ` ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
		exit 5`)
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(leaserunBin, "--lease", lease, "--ttl", "30s", "--log-level", "debug", "--", "sh", "-c", script.String())
	cmd.Env = append(e2eBaseEnv(), "GODEBUG=asyncpreemptoff=1")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	e2ePoll(t, signalsPatience, "the child to start", func() bool { _, err := os.Stat(ready); return err == nil })
	for i, s := range sigs {
		sig, err := parseScriptSignal(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatalf("kill -%s leaserun: %v", s, err)
		}
		// One at a time: sh runs a trap per pending signal, not per delivery.
		e2ePoll(t, signalsPatience, s+" to reach the child", func() bool {
			b, _ := os.ReadFile(got)
			if n := len(strings.Fields(string(b))); n > i {
				return true
			}
			if cmd.ProcessState == nil && syscall.Kill(cmd.Process.Pid, 0) == nil {
				if s, _ := procstat.Read(cmd.Process.Pid); s.State != 'Z' {
					return false
				}
			}
			b, _ = os.ReadFile(stderr.Name())
			t.Fatalf("leaserun ended on SIG%s; stderr:\n%s", s, b)
			return false
		})
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := waitStatus(t, cmd); code != 5 {
		t.Errorf("exit status %d, want the child's 5", code)
	}
	if b, _ := os.ReadFile(got); strings.Join(strings.Fields(string(b)), " ") != strings.Join(sigs, " ") {
		t.Errorf("the child got %q, want %q, each once", strings.Fields(string(b)), sigs)
	}
	if st := leaseState(t, lease); st != "released" {
		t.Errorf("the lease is %q, want released", st)
	}
}

// ignoredBits is the SigIgn mask of a process's /proc status file.
func ignoredBits(t *testing.T, status string) uint64 {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("SigIgn %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no SigIgn in:\n%s", status)
	return 0
}

// A signal ignored when leaserun starts stays ignored in the child, as it
// would for the command alone: SIGHUP under nohup, SIGINT in a script's
// background job, SIGTTIN. SIGPIPE is the exception: the Go runtime takes it
// over before leaserun's code runs, so the child gets it at its default.
func TestIgnoredAtStartStaysIgnored(t *testing.T) {
	dir := t.TempDir()
	lease, out := filepath.Join(dir, "lease"), filepath.Join(dir, "status")
	cmd := exec.Command("sh", "-c", `trap '' HUP INT TTIN PIPE; exec "$@"`, "sh",
		leaserunBin, "--lease", lease, "--", "sh", "-c", `cat /proc/$$/status > `+out)
	cmd.Env = e2eBaseEnv()
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("leaserun: %v\n%s", err, b)
	}
	status, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ign := ignoredBits(t, string(status))
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTTIN} {
		if ign&(1<<(sig-1)) == 0 {
			t.Errorf("%v is not ignored in the child (SigIgn %016x)", sig, ign)
		}
	}
	if ign&(1<<(syscall.SIGPIPE-1)) != 0 {
		t.Errorf("SIGPIPE is ignored in the child (SigIgn %016x), want its default", ign)
	}
}
