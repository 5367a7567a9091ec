//go:build linux

package supervisor

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/procstat"
	"github.com/leaserun/leaserun/internal/pty"
	"github.com/leaserun/leaserun/lease"
)

// helperEnv is the helper's configuration: testConfig's timings.
func helperEnv(t *testing.T, extra ...string) (path string, env []string) {
	cfg := testConfig(t)
	return cfg.Path, append([]string{
		"H_LEASE=" + cfg.Path,
		"H_TTL=" + cfg.TTL.String(),
		"H_RENEW=" + cfg.RenewInterval.String(),
		"H_GRACE=" + cfg.Grace.String(),
		"H_MARGIN=" + cfg.Margin.String(),
	}, extra...)
}

// Every signal leaserun catches reaches the child's group once.
func TestSignalsForwardedOnce(t *testing.T) {
	_, env := helperEnv(t)
	dir := t.TempDir()
	ready, got := filepath.Join(dir, "ready"), filepath.Join(dir, "got")
	h := startHelper(t, nil, env, "sh", "-c",
		`trap 'echo USR1 >> `+got+`' USR1; trap 'echo HUP >> `+got+`' HUP; trap 'echo WINCH >> `+got+`' WINCH
		: > `+got+`; echo $$ > `+ready+`
		n=0; while [ $n -lt 3 ]; do
			sleep 0.01 # the signals reach it too: no subshells here
			n=0; while read l; do n=$((n+1)); done < `+got+`
		done
		exit 5`)
	waitFile(t, ready)
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGWINCH} {
		before := len(strings.Fields(readFile(t, got)))
		h.cmd.Process.Signal(sig)
		// One at a time: sh runs a trap per pending signal, not per delivery.
		eventually(t, sig.String()+" reaches the child", func() bool {
			return len(strings.Fields(readFile(t, got))) > before
		})
	}
	if code := h.wait(t); code != 5 {
		t.Fatalf("exit status %d, want 5", code)
	}
	if lines := strings.Fields(readFile(t, got)); strings.Join(lines, " ") != "USR1 HUP WINCH" {
		t.Errorf("the child got %q, want each signal once", lines)
	}
}

// SIGTTIN or SIGTTOU sent to leaserun while the child runs must not stop it
// (its guard and renewals would stop while the child ran on past the
// lease): a USR1 sent after each is still forwarded.
func TestTTINAndTTOUDoNotStopLeaserun(t *testing.T) {
	_, env := helperEnv(t)
	dir := t.TempDir()
	ready, got := filepath.Join(dir, "ready"), filepath.Join(dir, "got")
	// A process group of its own: the kernel discards a SIGTTIN or SIGTTOU
	// sent to an orphaned group (under setsid, as CI may run us), and the
	// test could not fail.
	h := startHelper(t, &syscall.SysProcAttr{Setpgid: true}, env, "sh", "-c",
		`trap 'echo USR1 >> `+got+`' USR1
		: > `+got+`; echo $$ > `+ready+`
		n=0; while [ $n -lt 2 ]; do
			sleep 0.01
			n=0; while read l; do n=$((n+1)); done < `+got+`
		done
		exit 5`)
	waitFile(t, ready)
	// From its log line on: before, leaserun may not have started keeping
	// the stop signals off (it can't before the child has started).
	eventually(t, "leaserun logs the child's start", func() bool {
		return strings.Contains(h.stderr.String(), "child started")
	})
	for i, sig := range []syscall.Signal{syscall.SIGTTIN, syscall.SIGTTOU} {
		h.cmd.Process.Signal(sig)
		h.cmd.Process.Signal(syscall.SIGUSR1)
		eventually(t, "a USR1 after "+sig.String()+" reaches the child", func() bool {
			return len(strings.Fields(readFile(t, got))) > i
		})
	}
	if code := h.wait(t); code != 5 {
		t.Fatalf("exit status %d, want 5", code)
	}
}

// After TERM the child gets the grace period, then SIGKILL.
func TestTermThenKillAfterGrace(t *testing.T) {
	path, env := helperEnv(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := startHelper(t, nil, env, "sh", "-c", `trap '' TERM; echo $$ > `+pidFile+`; sleep 100 | cat`)
	waitFile(t, pidFile)
	start := time.Now()
	h.cmd.Process.Signal(syscall.SIGTERM)
	if code := h.wait(t); code != 137 {
		t.Fatalf("exit status %d, want 137 (SIGKILL after the grace period)", code)
	}
	if d, grace := time.Since(start), 800*time.Millisecond; d < grace {
		t.Errorf("killed after %v, within the grace period %v", d, grace)
	}
	waitGroupGone(t, pidFile)
	if st, err := lease.Read(path); err != nil || st.State != lease.StateReleased {
		t.Errorf("the lease is %v (%v), want released", st.State, err)
	}
}

// A child that exits on TERM exits with its own status, 143 here.
func TestTermStatus(t *testing.T) {
	_, env := helperEnv(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := startHelper(t, nil, env, "sh", "-c", `echo $$ > `+pidFile+`; sleep 100 | cat`)
	waitFile(t, pidFile)
	h.cmd.Process.Signal(syscall.SIGTERM)
	if code := h.wait(t); code != 143 {
		t.Fatalf("exit status %d, want 143", code)
	}
	waitGroupGone(t, pidFile)
}

// TERM or INT ends a wait for the lease at once: 143 or 130.
func TestSignalEndsWait(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			path, env := helperEnv(t, "H_WAIT=1")
			l, err := lease.Acquire(path, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			ran := filepath.Join(t.TempDir(), "ran")
			h := startHelper(t, nil, env, "touch", ran)
			eventually(t, "the helper waits", func() bool { return strings.Contains(h.stderr.String(), "waiting for the lease") })
			h.cmd.Process.Signal(sig)
			if code, want := h.wait(t), 128+int(sig); code != want {
				t.Fatalf("exit status %d, want %d", code, want)
			}
			if fileExists(ran) {
				t.Error("the command ran")
			}
		})
	}
}

// When leaserun and the child were frozen past the TTL, the loss is noticed
// on thawing: the child is killed at once, exit 76.
func TestFrozenPastTTL(t *testing.T) {
	_, env := helperEnv(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := startHelper(t, nil, env, "sh", "-c", `echo $$ > `+pidFile+`; sleep 100 | cat`)
	pgid, _ := strconv.Atoi(waitFile(t, pidFile))
	syscall.Kill(-pgid, syscall.SIGSTOP)
	h.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(testConfig(t).TTL + 500*time.Millisecond) // the freeze itself, not a synchronisation
	h.cmd.Process.Signal(syscall.SIGCONT)
	syscall.Kill(-pgid, syscall.SIGCONT)
	if code := h.wait(t); code != statusLost {
		t.Fatalf("exit status %d, want %d", code, statusLost)
	}
	if !strings.Contains(h.stderr.String(), "lease lost") {
		t.Errorf("no loss logged:\n%s", h.stderr.String())
	}
	waitGroupGone(t, pidFile)
}

// If leaserun dies by SIGKILL, the parent-death signal kills the child.
func TestChildDiesWithLeaserun(t *testing.T) {
	_, env := helperEnv(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := startHelper(t, nil, env, "sh", "-c", `echo $$ > `+pidFile+`; while :; do sleep 0.01; done`)
	pid, _ := strconv.Atoi(waitFile(t, pidFile))
	h.cmd.Process.Kill()
	h.wait(t)
	eventually(t, "the child dies", func() bool { return groupAlive(t, pid) == 0 || !processAlive(pid) })
}

// As PID 1 (here: a subreaper in the reaper's mode, and PID 1 of a new PID
// namespace when allowed) leaserun reaps the orphans reparented to it and
// keeps its child's status.
func TestReaper(t *testing.T) {
	script := `sh -c 'sleep 0.1 & echo $! > orphan'
		i=0; while kill -0 $(cat orphan) 2>/dev/null; do
			i=$((i+1)); [ $i -gt 2000 ] && exit 99; sleep 0.01
		done
		exit 5`
	for _, tc := range []struct {
		name string
		attr *syscall.SysProcAttr
		env  string
	}{
		{"subreaper", nil, "H_SUBREAPER=1"},
		{"pid 1", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.attr != nil && os.Geteuid() != 0 {
				t.Skip("a PID namespace needs root")
			}
			_, env := helperEnv(t, tc.env, "H_CHECK_REAPED=1")
			dir := t.TempDir()
			h := startHelper(t, tc.attr, env, "sh", "-c", "cd "+dir+" && "+script)
			// 5: the orphan was reaped (kill -0 fails only then) and the
			// child's status kept; 99: the orphan stayed a zombie.
			if code := h.wait(t); code != 5 {
				t.Fatalf("exit status %d, want 5", code)
			}
		})
	}
}

func processAlive(pid int) bool {
	s, err := procstat.Read(pid)
	return err == nil && s.Alive()
}

// On a terminal the child's group gets the foreground: it reads the
// terminal, and Ctrl-C reaches it once, from the terminal, not also from
// leaserun. leaserun takes the foreground back afterwards.
func TestTerminal(t *testing.T) {
	ptm, pts := pty.Open(t)
	dir := t.TempDir()
	ready, read, got := filepath.Join(dir, "ready"), filepath.Join(dir, "read"), filepath.Join(dir, "got")
	h := startOnTerminal(t, ptm, pts, pts, pts,
		`trap 'echo INT >> `+got+`; exit 7' INT; echo $$ > `+ready+`
		read line; echo "$line" > `+read+`
		while :; do sleep 0.01; done`)
	waitFile(t, ready)
	ptm.Write([]byte("hello\n"))
	if line := waitFile(t, read); line != "hello" {
		t.Fatalf("the child read %q from the terminal", line)
	}
	ptm.Write([]byte{3}) // Ctrl-C
	if code := h.wait(t); code != 7 {
		t.Fatalf("exit status %d, want 7 (the child's INT handler)", code)
	}
	if g := readFile(t, got); g != "INT" {
		t.Errorf("the child got %q, want INT once", g)
	}
	if strings.Contains(h.stderr.String(), "forwarding signal") {
		t.Errorf("leaserun forwarded a signal too:\n%s", h.stderr.String())
	}
}

// With stdin from a file, the child still gets the terminal's foreground
// through stdout: a child that opens /dev/tty to read (a password prompt)
// reads it instead of stopping on SIGTTIN as a background process.
func TestTerminalThroughStdout(t *testing.T) {
	ptm, pts := pty.Open(t)
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	dir := t.TempDir()
	ready, read := filepath.Join(dir, "ready"), filepath.Join(dir, "read")
	h := startOnTerminal(t, ptm, pts, stdin, pts,
		`echo $$ > `+ready+`; read line < /dev/tty; echo "$line" > `+read)
	waitFile(t, ready)
	ptm.Write([]byte("hello\n"))
	if line := waitFile(t, read); line != "hello" {
		t.Fatalf("the child read %q from the terminal", line)
	}
	if code := h.wait(t); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
}

// In a pipeline ("leaserun -- cmd | less") the other members share
// leaserun's process group: the child does not take the foreground from
// them.
func TestTerminalNotTakenInAPipeline(t *testing.T) {
	ptm, pts := pty.Open(t)
	var out bytes.Buffer // os/exec copies it through a pipe
	h := startOnTerminal(t, ptm, pts, pts, &out,
		// Fields 5 and 8 of /proc/self/stat: process group, and the
		// terminal's foreground process group.
		`set -- $(sed 's/.*) //' /proc/self/stat); [ "$3" = "$6" ] && echo foreground || echo background`)
	if code := h.wait(t); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	if got := strings.TrimSpace(out.String()); got != "background" {
		t.Errorf("the child ran in the %s, want the background", got)
	}
}

// startOnTerminal starts the helper running script as the child, in a new
// session whose controlling terminal is pts (the helper's first of stdin
// and stdout that is it), in the foreground.
func startOnTerminal(t *testing.T, ptm, pts *os.File, stdin io.Reader, stdout io.Writer, script string) *helper {
	t.Helper()
	_, env := helperEnv(t, "H_CHECK_FOREGROUND=1")
	ctty := 0
	if stdin != io.Reader(pts) {
		ctty = 1
	}
	h := newHelper(&syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: ctty}, env, "sh", "-c", script)
	h.cmd.Stdin, h.cmd.Stdout = stdin, stdout
	if err := h.start(t); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, ptm) // the terminal's output
	return h
}
