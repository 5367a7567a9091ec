//go:build linux

package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// A child that ignores the stop signal is SIGKILLed a grace period after
// its maximum runtime, with its group, and the lease is released.
func TestRunMaxRuntimeKillsAfterGrace(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRuntime = time.Second // time enough for sh to set its trap
	cfg.Grace = 400 * time.Millisecond
	pids := filepath.Join(filepath.Dir(cfg.Path), "pids")
	start := time.Now()
	err := Run(context.Background(), cfg, sh(`trap '' TERM; sleep 30 & echo $$ > `+pids+`; wait`))
	took := time.Since(start)
	var timeout *MaxRuntimeError
	if !errors.As(err, &timeout) || timeout.Exit.Signal != syscall.SIGKILL || timeout.MaxRuntime != cfg.MaxRuntime {
		t.Fatalf("Run = %v, want a *MaxRuntimeError with the child SIGKILLed", err)
	}
	if took < cfg.MaxRuntime+cfg.Grace || took > cfg.MaxRuntime+cfg.Grace+2*time.Second {
		t.Errorf("Run took %v, want about MaxRuntime + Grace = %v", took, cfg.MaxRuntime+cfg.Grace)
	}
	waitGroupGone(t, pids)
	if st, err := lease.Read(cfg.Path); err != nil || st.State != lease.StateReleased {
		t.Errorf("after the maximum runtime the lease is %v (%v), want released", st.State, err)
	}
	if errors.Is(err, lease.ErrLost) {
		t.Errorf("a maximum runtime is not a lost lease: %v", err)
	}
}

// A child that stops on the stop signal ends with it, and Run still
// reports the maximum runtime.
func TestRunMaxRuntimeStopSignal(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRuntime = 200 * time.Millisecond
	cfg.StopSignal = syscall.SIGUSR1
	err := Run(context.Background(), cfg, sh(`sleep 30`))
	var timeout *MaxRuntimeError
	if !errors.As(err, &timeout) || timeout.Exit.Signal != syscall.SIGUSR1 {
		t.Fatalf("Run = %v, want a *MaxRuntimeError with the child ended by SIGUSR1", err)
	}
	// A command that ends in time is not stopped.
	cfg.MaxRuntime = time.Minute
	if err := Run(context.Background(), cfg, sh(`exit 0`)); err != nil {
		t.Fatalf("Run of a quick command with a maximum runtime = %v", err)
	}
}

func TestConfigValidateOps(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRuntime = -time.Second
	var ce *ConfigError
	if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != "MaxRuntime" {
		t.Errorf("negative MaxRuntime: %v", err)
	}
	cfg = testConfig(t)
	cfg.OncePer = -time.Second
	if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != "OncePer" {
		t.Errorf("negative OncePer: %v", err)
	}
}

// With OncePer, the first run in a slot runs and records its status; the
// next in the slot runs nothing and returns lease.ErrDone.
func TestRunOncePer(t *testing.T) {
	cfg := testConfig(t)
	cfg.OncePer = time.Hour
	inOneSlot(cfg.OncePer)
	ran := filepath.Join(filepath.Dir(cfg.Path), "ran")
	slotFile := filepath.Join(filepath.Dir(cfg.Path), "slot")
	err := Run(context.Background(), cfg, sh(`echo x >> `+ran+`; echo $LEASERUN_SLOT > `+slotFile+`; exit 3`))
	if exit := (*ExitError)(nil); !errors.As(err, &exit) || exit.Code != 3 {
		t.Fatalf("first run in the slot: %v, want exit 3", err)
	}
	st, err := lease.Read(cfg.Path)
	if err != nil || st.Record.Slot == nil || st.Record.Slot.ExitStatus == nil || *st.Record.Slot.ExitStatus != 3 ||
		!st.Record.Slot.Start.Equal(lease.SlotOf(time.Now(), time.Hour)) {
		t.Fatalf("the slot after the run: %+v (%v)", st.Record, err)
	}
	if got, want := readFile(t, slotFile), st.Record.Slot.Start.Format(time.RFC3339); got != want {
		t.Errorf("the child's LEASERUN_SLOT = %q, want %q", got, want)
	}
	for _, wait := range []bool{false, true} {
		cfg.Wait = wait
		if err := Run(context.Background(), cfg, sh(`echo x >> `+ran)); !errors.Is(err, lease.ErrDone) {
			t.Fatalf("second run in the slot (wait %v): %v, want ErrDone", wait, err)
		}
	}
	if got := readFile(t, ran); got != "x" {
		t.Fatalf("the command ran %d times in one slot", strings.Count(got, "x"))
	}
}

// inOneSlot waits, if the current slot of length d ends within seconds,
// until the next one begins: a test that runs twice in one slot must not
// straddle its end.
func inOneSlot(d time.Duration) {
	if left := time.Until(lease.SlotOf(time.Now(), d).Add(d)); left < 15*time.Second {
		time.Sleep(left)
	}
}

// A run stopped for its maximum runtime records 124 in its slot.
func TestRunOncePerMaxRuntimeStatus(t *testing.T) {
	cfg := testConfig(t)
	cfg.OncePer = time.Hour
	cfg.MaxRuntime = 100 * time.Millisecond
	if err := Run(context.Background(), cfg, sh(`sleep 30`)); !errors.As(err, new(*MaxRuntimeError)) {
		t.Fatalf("Run = %v", err)
	}
	st, err := lease.Read(cfg.Path)
	if err != nil || st.Record.Slot == nil || st.Record.Slot.ExitStatus == nil || *st.Record.Slot.ExitStatus != 124 {
		t.Fatalf("the slot after a run stopped for its maximum runtime: %+v (%v)", st.Record, err)
	}
}

// Stats follows the lease: held with its epoch and a stop point while the
// child runs, renewals counted and timed; waiting while it stands by.
func TestRunStats(t *testing.T) {
	cfg := testConfig(t)
	stats := NewStats()
	cfg.Stats = stats
	dir := filepath.Dir(cfg.Path)
	started, finish := filepath.Join(dir, "started"), filepath.Join(dir, "finish")
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), cfg, sh(`echo $LEASERUN_EPOCH > `+started+`; while [ ! -e `+finish+` ]; do sleep 0.02; done`))
	}()
	epoch, _ := strconv.ParseUint(strings.TrimSpace(waitFile(t, started)), 10, 64)
	eventually(t, "three renewals", func() bool { return stats.Snapshot().Renewals >= 3 })
	s := stats.Snapshot()
	limit := cfg.TTL - cfg.Grace - cfg.Margin
	if !s.Held || s.Waiting || s.Epoch != epoch || s.Acquisitions != 1 || s.StopIn <= 0 || s.StopIn > limit {
		t.Errorf("while the child runs: %+v; want held at epoch %d, stop in (0, %v]", s, epoch, limit)
	}
	if s.RenewalCount != s.Renewals+s.RenewalFailures || s.RenewalCounts[len(s.RenewalCounts)-1] != s.RenewalCount || s.RenewalSum <= 0 {
		t.Errorf("renewal histogram: %+v", s)
	}
	os.WriteFile(finish, nil, 0o644)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := stats.Snapshot(); s.Held || s.StopIn != 0 || s.Epoch != epoch {
		t.Errorf("after Run: %+v; want not held, epoch %d kept", s, epoch)
	}

	// Standing by.
	holder, err := lease.Acquire(cfg.Path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Wait = true
	go func() { done <- Run(context.Background(), cfg, sh(`exit 0`)) }()
	eventually(t, "waiting", func() bool { return stats.Snapshot().Waiting })
	if s := stats.Snapshot(); s.Held {
		t.Errorf("held while standing by: %+v", s)
	}
	holder.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := stats.Snapshot(); s.Waiting || s.Acquisitions != 2 || s.Epoch != epoch+2 {
		t.Errorf("after the second Run: %+v", s)
	}
}

// Do's function is cancelled at its maximum runtime, with the cause.
func TestDoMaxRuntime(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRuntime = 100 * time.Millisecond
	cfg.OncePer = time.Hour
	inOneSlot(cfg.OncePer)
	var cause error
	err := Do(context.Background(), cfg, func(ctx context.Context) error {
		<-ctx.Done()
		cause = context.Cause(ctx)
		return ctx.Err()
	})
	var timeout *MaxRuntimeError
	if !errors.As(err, &timeout) || !errors.As(cause, &timeout) {
		t.Fatalf("Do = %v (cause %v), want a *MaxRuntimeError", err, cause)
	}
	st, err := lease.Read(cfg.Path)
	if err != nil || st.State != lease.StateReleased || *st.Record.Slot.ExitStatus != 124 {
		t.Fatalf("after Do: %+v (%v)", st, err)
	}
	if err := Do(context.Background(), cfg, func(context.Context) error { return nil }); !errors.Is(err, lease.ErrDone) {
		t.Fatalf("Do again in the slot: %v, want ErrDone", err)
	}
}
