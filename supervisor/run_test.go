//go:build linux

package supervisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   ExitError // none for exit 0
	}{
		{"exit 0", ExitError{}},
		{"exit 3", ExitError{Code: 3}},
		{"exit 255", ExitError{Code: 255}},
		{"kill -USR1 $$", ExitError{Code: 128 + int(syscall.SIGUSR1), Signal: syscall.SIGUSR1}},
		{"kill -KILL $$", ExitError{Code: 137, Signal: syscall.SIGKILL}},
	} {
		t.Run(tc.script, func(t *testing.T) {
			cfg := testConfig(t)
			err := Run(context.Background(), cfg, sh(tc.script))
			var got ExitError
			if exit := (*ExitError)(nil); errors.As(err, &exit) {
				got = *exit
			} else if err != nil {
				t.Fatalf("Run = %v, want %v", err, &tc.want)
			}
			if got != tc.want {
				t.Fatalf("Run = %v, want %v", err, &tc.want)
			}
			st, err := lease.Read(cfg.Path)
			if err != nil || st.State != lease.StateReleased {
				t.Errorf("after Run the lease is %v (%v), want released", st.State, err)
			}
		})
	}
}

func TestRunEnvironment(t *testing.T) {
	cfg := testConfig(t)
	dir := filepath.Dir(cfg.Path)
	t.Chdir(dir)
	cfg.Path = "lease" // relative: the child gets it absolute
	out := filepath.Join(dir, "env")
	cmd := sh(`printf '%s\n' "$LEASERUN_LEASE_PATH" "$LEASERUN_INSTANCE_ID" "$LEASERUN_EPOCH" "$KEPT" > ` + out)
	cmd.Env = []string{"KEPT=yes", "PATH=" + os.Getenv("PATH"), "LEASERUN_EPOCH=stale"}
	if err := Run(context.Background(), cfg, cmd); err != nil {
		t.Fatalf("Run = %v", err)
	}
	st, err := lease.Read(filepath.Join(dir, "lease"))
	if err != nil || st.Record == nil {
		t.Fatalf("reading the lease: %v", err)
	}
	want := []string{filepath.Join(dir, "lease"), st.Record.InstanceID, strconv.FormatUint(st.Record.Epoch, 10), "yes"}
	if got := strings.Split(readFile(t, out), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("the child's environment: got %q, want %q", got, want)
	}
}

func TestRunCommandNotRunnable(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noInterp := filepath.Join(dir, "nointerp")
	if err := os.WriteFile(noInterp, []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cmd      *exec.Cmd
		sentinel error
		acquired bool // the failure comes after the lease was taken
	}{
		{"not in PATH", exec.Command("no-such-command-leaserun"), ErrNotFound, false},
		{"no such file", exec.Command(filepath.Join(dir, "missing")), ErrNotFound, false},
		{"no command", &exec.Cmd{}, ErrNotFound, false},
		{"not executable", exec.Command(notExec), ErrCannotExec, false},
		{"a directory", exec.Command(dir), ErrCannotExec, false},
		{"exec fails", exec.Command(noInterp), ErrCannotExec, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			if err := Run(context.Background(), cfg, tc.cmd); !errors.Is(err, tc.sentinel) {
				t.Fatalf("Run = %v, want %v", err, tc.sentinel)
			}
			st, err := lease.Read(cfg.Path)
			want := lease.StateFree
			if tc.acquired {
				want = lease.StateReleased
			}
			if err != nil || st.State != want {
				t.Errorf("the lease is %v (%v), want %v", st.State, err, want)
			}
		})
	}
}

func TestRunConfigError(t *testing.T) {
	cfg := testConfig(t)
	cfg.RenewInterval = cfg.TTL
	if err := Run(context.Background(), cfg, sh("exit 0")); !errors.As(err, new(*ConfigError)) {
		t.Errorf("renew = ttl: Run = %v", err)
	}
}

func TestRunHeld(t *testing.T) {
	cfg := testConfig(t)
	l, err := lease.Acquire(cfg.Path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	ran := filepath.Join(t.TempDir(), "ran")
	err = Run(context.Background(), cfg, sh("touch "+ran))
	if !errors.Is(err, lease.ErrHeld) || !strings.Contains(err.Error(), l.InstanceID()) {
		t.Fatalf("Run = %v; want held, naming the holder", err)
	}
	if readFile(t, ran) != "" || fileExists(ran) {
		t.Error("the command ran although the lease was held")
	}
}

func TestRunIOError(t *testing.T) {
	cfg := testConfig(t)
	cfg.Path = filepath.Join(t.TempDir(), "missing", "lease")
	err := Run(context.Background(), cfg, sh("exit 0"))
	if ioErr := (*IOError)(nil); !errors.As(err, &ioErr) || ioErr.Path != cfg.Path || !strings.Contains(err.Error(), cfg.Path) {
		t.Fatalf("Run = %v; want an I/O error naming the path", err)
	}
}

func TestRunWaitTimeout(t *testing.T) {
	cfg := testConfig(t)
	l, err := lease.Acquire(cfg.Path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	cfg.Wait, cfg.WaitTimeout = true, 200*time.Millisecond
	start := time.Now()
	err = Run(context.Background(), cfg, sh("exit 0"))
	if !errors.Is(err, lease.ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v; want held after the wait timeout", err)
	}
	if d := time.Since(start); d < cfg.WaitTimeout {
		t.Errorf("gave up after %v, before the wait timeout %v", d, cfg.WaitTimeout)
	}
}

func TestRunWaitsForRelease(t *testing.T) {
	cfg := testConfig(t)
	l, err := lease.Acquire(cfg.Path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Wait = true
	res := make(chan error, 1)
	go func() { res <- Run(context.Background(), cfg, sh("exit 7")) }()
	// The holder neither renews nor releases for a minute: Run can only
	// run the command once it is released.
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if exit := (*ExitError)(nil); !errors.As(err, &exit) || exit.Code != 7 {
			t.Fatalf("Run = %v; want exit status 7", err)
		}
	case <-time.After(patience):
		t.Fatal("Run did not take the released lease")
	}
}

// A takeover is noticed at the next renewal: the child's whole group is
// killed at once and Run returns a *LostError.
func TestRunLost(t *testing.T) {
	cfg := testConfig(t)
	cfg.TTL = 5 * time.Second // the renewal, not the guard, must notice
	pidFile := filepath.Join(t.TempDir(), "pid")
	res := make(chan error, 1)
	go func() { res <- Run(context.Background(), cfg, sh("echo $$ > "+pidFile+"; sleep 100 | cat")) }()
	waitFile(t, pidFile)
	thief := takeOver(t, cfg.Path)
	defer thief.Release()
	start := time.Now()
	var err error
	select {
	case err = <-res:
	case <-time.After(patience):
		t.Fatal("Run did not notice the takeover")
	}
	var lost *LostError
	if !errors.Is(err, lease.ErrLost) || !errors.As(err, &lost) {
		t.Fatalf("Run = %v; want lost", err)
	}
	// A renewal noticed it, not the guard, which would have stopped the
	// child at TTL-Grace-Margin.
	if lost.Reason != "renewal failed" || !errors.Is(lost.Err, lease.ErrLost) {
		t.Errorf("Run = %v; want a renewal that failed with ErrLost", err)
	}
	if d := time.Since(start); d > cfg.TTL-cfg.Grace-cfg.Margin {
		t.Errorf("the takeover was noticed after %v", d)
	}
	waitGroupGone(t, pidFile)
	if st, err := lease.Read(cfg.Path); err != nil || st.Record.InstanceID != thief.InstanceID() {
		t.Errorf("the release touched the new holder's lease: %+v, %v", st, err)
	}
}

// A renewal hung in a stuck filesystem does not delay the stop: the guard
// sends the stop signal at Deadline-Grace-Margin, and the child stops before
// the lease can lapse.
func TestRunGuardStopsWhenRenewalHangs(t *testing.T) {
	cfg := roomyGuard(t)
	hangRenewals(t, &cfg)
	dir := t.TempDir()
	ready, termed := filepath.Join(dir, "ready"), filepath.Join(dir, "termed")
	start := time.Now()
	err := Run(context.Background(), cfg,
		sh(`trap 'echo yes > `+termed+`; exit 0' TERM; echo $$ > `+ready+`; while :; do sleep 0.01; done`))
	end := time.Now()
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Run = %v; want lost", err)
	}
	if readFile(t, termed) != "yes" {
		t.Error("the child did not get the stop signal")
	}
	// The lease was taken after start, so it lapses after start+TTL; the
	// child must have been stopped before the kill point of that deadline.
	if stopBy := start.Add(cfg.TTL - cfg.Margin); end.After(stopBy) {
		t.Errorf("the child stopped %v after the kill point", end.Sub(stopBy))
	}
	if earliest := start.Add(cfg.TTL - cfg.Grace - cfg.Margin); end.Before(earliest) {
		t.Errorf("the child was stopped %v before the stop point", earliest.Sub(end))
	}
	waitGroupGone(t, ready)
}

// A child that ignores the stop signal is killed at Deadline-Margin, before
// the lease can lapse.
func TestRunGuardKillsBeforeDeadline(t *testing.T) {
	cfg := roomyGuard(t)
	hangRenewals(t, &cfg)
	pidFile := filepath.Join(t.TempDir(), "pid")
	err := Run(context.Background(), cfg, sh(`trap '' TERM; echo $$ > `+pidFile+`; while :; do sleep 0.01; done`))
	end := time.Now()
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Run = %v; want lost", err)
	}
	st, rerr := lease.Read(cfg.Path)
	if rerr != nil || st.Record == nil {
		t.Fatal(rerr)
	}
	// Nothing was renewed, so the acquisition's RenewedAt + TTL is the
	// deadline; Run (kill, reap, release) must be done before it.
	if deadline := st.Record.AcquiredAt.Add(cfg.TTL); !end.Before(deadline) {
		t.Errorf("the child was killed %v after the deadline", end.Sub(deadline))
	}
	waitGroupGone(t, pidFile)
}

// When the child exits, whatever it left in its group is killed before the
// lease is released.
func TestRunKillsLeftovers(t *testing.T) {
	cfg := testConfig(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	err := Run(context.Background(), cfg, sh("echo $$ > "+pidFile+"; sleep 100 & exit 4"))
	if exit := (*ExitError)(nil); !errors.As(err, &exit) || exit.Code != 4 {
		t.Fatalf("Run = %v; want exit status 4", err)
	}
	waitGroupGone(t, pidFile)
}

// Cancelling the context stops the child with the stop signal.
func TestRunContextCancel(t *testing.T) {
	cfg := testConfig(t)
	cfg.StopSignal = syscall.SIGUSR1
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		waitFile(t, pidFile)
		cancel()
	}()
	err := Run(ctx, cfg, sh(`trap 'exit 9' USR1; echo $$ > `+pidFile+`; while :; do sleep 0.01; done`))
	if exit := (*ExitError)(nil); !errors.As(err, &exit) || exit.Code != 9 {
		t.Fatalf("Run = %v; want exit status 9 (the child's handler of the stop signal)", err)
	}
}

// roomyGuard is testConfig with two seconds between the guard's stop and
// kill points, and between the kill point and the deadline: room for a
// loaded machine to run a shell's trap, or to kill, reap and release,
// where the tests check that these happen in time.
func roomyGuard(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.TTL, cfg.Grace, cfg.Margin = 6*time.Second, 2*time.Second, 2*time.Second
	return cfg
}

// hangRenewals makes every renewal of cfg hang until the test ends, as in a
// stuck filesystem.
func hangRenewals(t *testing.T, cfg *Config) {
	unblock := make(chan struct{})
	t.Cleanup(func() { close(unblock) })
	cfg.hooks = &hooks{renew: func(*lease.Lease) error {
		<-unblock
		return errors.New("unblocked")
	}}
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
