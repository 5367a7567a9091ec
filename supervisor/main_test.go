//go:build linux

package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/procstat"
	"github.com/leaserun/leaserun/lease"
)

// The test binary doubles as a supervisor process (helperMain) for the tests
// that signal, freeze or namespace the process running Run.
func TestMain(m *testing.M) {
	if os.Getenv("SUPERVISOR_TEST_HELPER") == "1" {
		os.Exit(helperMain())
	}
	if os.Getenv("SUPERVISOR_TEST_CATCH") == "1" {
		os.Exit(catchMain())
	}
	goleak.VerifyTestMain(m)
}

// helperMain runs Run as configured by H_* variables on the command line
// os.Args[1:], and exits with its status.
func helperMain() int {
	dur := func(name string) time.Duration {
		d, _ := time.ParseDuration(os.Getenv(name))
		return d
	}
	cfg := Config{
		Path:          os.Getenv("H_LEASE"),
		TTL:           dur("H_TTL"),
		RenewInterval: dur("H_RENEW"),
		Grace:         dur("H_GRACE"),
		Margin:        dur("H_MARGIN"),
		Wait:          os.Getenv("H_WAIT") == "1",
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		hooks:         &hooks{},
	}
	if os.Getenv("H_HANG_RENEW") == "1" {
		cfg.hooks.renew = func(*lease.Lease) error { select {} }
	}
	if os.Getenv("H_SUBREAPER") == "1" {
		if !becomeSubreaper() {
			fmt.Fprintln(os.Stderr, "helper: can't become a subreaper")
			return 98
		}
		cfg.hooks.reap = true
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := Run(context.Background(), cfg, cmd)
	var exit *ExitError
	var interrupted *InterruptedError
	code := 1
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &exit):
		code = exit.Code
	case errors.As(err, &interrupted):
		code = 128 + int(interrupted.Signal)
	case errors.Is(err, lease.ErrLost):
		code = statusLost
	}
	if code == 1 || code == statusLost {
		fmt.Fprintln(os.Stderr, "helper: run:", err)
	}
	if os.Getenv("H_CHECK_FOREGROUND") == "1" {
		// The terminal is the first of stdin, stdout, stderr that is one.
		fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
		for fd := 1; err != nil && fd <= 2; fd++ {
			fg, err = unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		}
		if err != nil || fg != unix.Getpgrp() {
			fmt.Fprintln(os.Stderr, "helper: the terminal's foreground was not given back:", fg, err)
			return 97
		}
	}
	if os.Getenv("H_CHECK_REAPED") == "1" {
		// Nothing left to reap: no zombie, no live child.
		if pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); err != syscall.ECHILD {
			fmt.Fprintln(os.Stderr, "helper: unreaped children:", pid, err)
			return 99
		}
	}
	return code
}

// statusLost is the helper's status when the lease was lost, as leaserun's.
const statusLost = 76

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// helper is the test binary running helperMain.
type helper struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	done   chan struct{}
	code   int
}

// startHelper runs helperMain with env (H_* variables) on args. It skips
// the test if the helper can't start with attr (a PID namespace without
// root, say).
func startHelper(t *testing.T, attr *syscall.SysProcAttr, env []string, args ...string) *helper {
	t.Helper()
	h := newHelper(attr, env, args...)
	if err := h.start(t); err != nil {
		if attr != nil {
			t.Skipf("can't start the helper with %+v: %v", attr, err)
		}
		t.Fatal(err)
	}
	return h
}

// newHelper prepares helperMain with env on args, for start.
func newHelper(attr *syscall.SysProcAttr, env []string, args ...string) *helper {
	h := &helper{done: make(chan struct{})}
	h.cmd = exec.Command(os.Args[0], args...)
	h.cmd.Env = append(os.Environ(), append(env, "SUPERVISOR_TEST_HELPER=1")...)
	h.cmd.Stderr = &h.stderr
	h.cmd.SysProcAttr = attr
	return h
}

// start starts the helper, which the test's end kills if it still runs.
func (h *helper) start(t *testing.T) error {
	if err := h.cmd.Start(); err != nil {
		return err
	}
	go func() {
		h.cmd.Wait()
		h.code = h.cmd.ProcessState.ExitCode()
		if ws, ok := h.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			h.code = 128 + int(ws.Signal())
		}
		close(h.done)
	}()
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		<-h.done
		if t.Failed() {
			t.Logf("helper stderr:\n%s", h.stderr.String())
		}
	})
	return nil
}

// wait waits for the helper to exit, and returns its status.
func (h *helper) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-h.done:
		return h.code
	case <-time.After(patience):
		t.Fatalf("the helper did not exit within %v", patience)
		return -1
	}
}

// patience bounds every wait for something that should happen soon.
const patience = 20 * time.Second

// eventually polls cond until it holds, failing the test after patience.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readFile returns the file's trimmed contents, or "" if it doesn't exist.
func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// waitFile waits until name holds something, and returns it.
func waitFile(t *testing.T, name string) string {
	t.Helper()
	var s string
	eventually(t, name+" is written", func() bool { s = readFile(t, name); return s != "" })
	return s
}

// groupAlive counts the live (not zombie) processes in process group pgid.
func groupAlive(t *testing.T, pgid int) int {
	t.Helper()
	procs, err := procstat.All()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range procs {
		if p.PGRP == pgid && p.Alive() {
			n++
		}
	}
	return n
}

// waitGroupGone waits until nothing of the child's group runs any more.
func waitGroupGone(t *testing.T, pidFile string) {
	t.Helper()
	pgid, err := strconv.Atoi(readFile(t, pidFile))
	if err != nil {
		t.Fatalf("reading the child's pid: %v", err)
	}
	eventually(t, "the child's process group is gone", func() bool { return groupAlive(t, pgid) == 0 })
}

// future is a clock an hour ahead: a handle using it finds any lease
// expired, and takes it over.
type future struct{}

func (future) Now() time.Time                         { return time.Now().Add(time.Hour) }
func (future) After(d time.Duration) <-chan time.Time { return time.After(d) }

// takeOver takes the lease over from whoever holds it, as a challenger
// whose clock says it expired.
func takeOver(t *testing.T, path string) *lease.Lease {
	t.Helper()
	l, err := lease.Acquire(path, time.Minute, lease.WithClock(future{}))
	if err != nil {
		t.Fatalf("taking the lease over: %v", err)
	}
	return l
}

// testConfig is a short-lived lease in a fresh directory. The margin is
// generous: these tests run on loaded machines, where timers fire late.
func testConfig(t *testing.T) Config {
	return Config{
		Path:          filepath.Join(t.TempDir(), "lease"),
		TTL:           3 * time.Second,
		RenewInterval: 100 * time.Millisecond,
		Grace:         800 * time.Millisecond,
		Margin:        800 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// testWriter logs to the test.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// sh is a command running script with sh.
func sh(script string) *exec.Cmd { return exec.Command("sh", "-c", script) }
