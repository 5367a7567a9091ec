package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/lease"
)

// waiter is a lease.Wait running in its own goroutine.
type waiter struct {
	res  chan waitResult
	done context.Context // cancelled once Wait returned
}

type waitResult struct {
	l   *lease.Lease
	err error
}

// startWait runs lease.Wait(ctx, path, ttl, opts...) in a goroutine. The
// test's cleanup cancels it and waits for it to end.
func startWait(t *testing.T, ctx context.Context, path string, ttl time.Duration, opts ...lease.Option) *waiter {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done, markDone := context.WithCancel(context.Background())
	w := &waiter{res: make(chan waitResult, 1), done: done}
	go func() {
		defer markDone()
		l, err := lease.Wait(ctx, path, ttl, opts...)
		w.res <- waitResult{l, err}
	}()
	t.Cleanup(func() { cancel(); <-done.Done() })
	return w
}

// step waits until Wait either returned (then step reports false) or waits
// on clk (then step advances clk by d and reports true).
func (w *waiter) step(t *testing.T, clk *fakeclock.Clock, d time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(w.done, time.Minute) // a bound on a hang, not a timing
	defer cancel()
	if err := clk.BlockUntil(ctx, 1); err != nil {
		if w.done.Err() != nil {
			return false
		}
		t.Fatal("Wait neither returned nor waited on its clock within a minute")
	}
	clk.Advance(d)
	return true
}

// drive steps w by d until it returns, failing after maxSteps steps.
func (w *waiter) drive(t *testing.T, clk *fakeclock.Clock, d time.Duration, maxSteps int) waitResult {
	t.Helper()
	for i := 0; w.step(t, clk, d); i++ {
		if i == maxSteps {
			t.Fatalf("Wait still waiting after %d steps of %v", maxSteps, d)
		}
	}
	return <-w.res
}

// tookAt is the instant, on the clock it was acquired with, of an
// acquisition: its deadline less its TTL.
func tookAt(l *lease.Lease) time.Time { return l.Deadline().Add(-l.TTL()) }

// waitNow runs Wait expecting it to return without its clock moving.
func waitNow(t *testing.T, path string, ttl time.Duration, opts ...lease.Option) *lease.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on a hang
	defer cancel()
	l, err := lease.Wait(ctx, path, ttl, opts...)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return l
}

func TestWaitFreeReturnsAtOnce(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	l := waitNow(t, path, ttl, lease.WithClock(clk))
	if !tookAt(l).Equal(clk.Now()) || l.Epoch() != 1 {
		t.Fatalf("Wait on a free lease took at %v epoch %d", tookAt(l), l.Epoch())
	}
	wantHeldBy(t, path, clk, l)
}

func TestWaitReleasedReturnsAtOnce(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	holder := mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	l := waitNow(t, path, ttl, lease.WithClock(clk))
	if l.Epoch() <= holder.Epoch() {
		t.Fatalf("epoch %d, not above %d", l.Epoch(), holder.Epoch())
	}
	wantHeldBy(t, path, clk, l)
}

func TestWaitUnreadableReturnsAtOnce(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	holder := mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
	writeVersion(t, path, newestVersion(t, path)+1, []byte("{garbage"))
	l := waitNow(t, path, time.Minute, lease.WithClock(clk))
	wantHeldBy(t, path, clk, l)
	if err := holder.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("old holder's Renew: %v, want ErrLost", err)
	}
}

// TestWaitTakesOverAfterUnchangedTTL: a standby takes over a held lease only
// once it has seen the record unchanged for the record's whole TTL on its
// own clock, however old the record's wall-clock times look.
func TestWaitTakesOverAfterUnchangedTTL(t *testing.T) {
	const holderTTL, step = 10 * time.Second, time.Second
	for _, tc := range []struct {
		name      string
		waiterTTL time.Duration
		waiterAt  time.Duration // the waiter's clock, from the holder's
	}{
		{"same clock", holderTTL, 0},
		{"record looks long expired", holderTTL, time.Hour},
		{"record in the future", holderTTL, -time.Hour},
		{"shorter waiter ttl", time.Second, time.Hour},
		{"longer waiter ttl", time.Hour, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := leasePathIn(t)
			holder := mustAcquireLease(t, path, holderTTL, lease.WithClock(clockAt(0)))
			clk := clockAt(tc.waiterAt)
			begin := clk.Now()
			w := startWait(t, context.Background(), path, tc.waiterTTL, lease.WithClock(clk), lease.WithPollInterval(step))
			r := w.drive(t, clk, step, 100)
			if r.err != nil {
				t.Fatalf("Wait: %v", r.err)
			}
			took := tookAt(r.l)
			if took.Before(begin.Add(holderTTL)) {
				t.Fatalf("took over %v after it began to watch, before the holder's TTL %v", took.Sub(begin), holderTTL)
			}
			if took.After(begin.Add(holderTTL + step)) {
				t.Fatalf("took over %v after it began to watch, later than the holder's TTL %v plus a poll", took.Sub(begin), holderTTL)
			}
			if r.l.TTL() != tc.waiterTTL || r.l.Epoch() <= holder.Epoch() {
				t.Fatalf("Wait's lease: ttl %v epoch %d", r.l.TTL(), r.l.Epoch())
			}
			wantHeldBy(t, path, clk, r.l)
			if err := holder.Renew(); !errors.Is(err, lease.ErrLost) {
				t.Fatalf("old holder's Renew: %v, want ErrLost", err)
			}
		})
	}
}

// TestWaitRenewalResetsObservation: every renewal by the holder restarts the
// standby's TTL of observation.
func TestWaitRenewalResetsObservation(t *testing.T) {
	const ttl, step = 10 * time.Second, time.Second
	path := leasePathIn(t)
	a := clockAt(0)
	holder := mustAcquireLease(t, path, ttl, lease.WithClock(a))
	clk := clockAt(time.Hour)
	begin := clk.Now()
	w := startWait(t, context.Background(), path, ttl, lease.WithClock(clk), lease.WithPollInterval(step))

	var renewedAt time.Time
	for _, after := range []time.Duration{6 * time.Second, 9 * time.Second, 3 * time.Second} {
		for until := clk.Now().Add(after); clk.Now().Before(until); {
			if !w.step(t, clk, step) {
				r := <-w.res
				t.Fatalf("Wait returned %v after %v while the holder renews", r.err, clk.Now().Sub(begin))
			}
		}
		a.Advance(after)
		if err := holder.Renew(); err != nil {
			t.Fatal(err)
		}
		renewedAt = clk.Now()
	}
	r := w.drive(t, clk, step, 100)
	if r.err != nil {
		t.Fatalf("Wait: %v", r.err)
	}
	took := tookAt(r.l)
	if took.Before(renewedAt.Add(ttl)) {
		t.Fatalf("took over %v after the last renewal, before the TTL %v", took.Sub(renewedAt), ttl)
	}
	if took.After(renewedAt.Add(ttl + step)) {
		t.Fatalf("took over %v after the last renewal, later than the TTL %v plus a poll", took.Sub(renewedAt), ttl)
	}
	if err := holder.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("old holder's Renew: %v, want ErrLost", err)
	}
}

func TestWaitContextEnds(t *testing.T) {
	path := leasePathIn(t)
	a := clockAt(0)
	holder := mustAcquireLease(t, path, time.Minute, lease.WithClock(a))

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		l, err := lease.Wait(ctx, path, time.Minute, lease.WithClock(clockAt(0)))
		if l != nil || !errors.Is(err, lease.ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait past its deadline: %v, %v; want ErrHeld and DeadlineExceeded", l, err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		clk := clockAt(0)
		w := startWait(t, ctx, path, time.Minute, lease.WithClock(clk))
		bound, stop := context.WithTimeout(context.Background(), time.Minute)
		defer stop()
		if err := clk.BlockUntil(bound, 1); err != nil {
			t.Fatal("Wait did not wait on its clock")
		}
		cancel()
		r := <-w.res
		if r.l != nil || !errors.Is(r.err, lease.ErrHeld) || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled Wait: %v, %v; want ErrHeld and Canceled", r.l, r.err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		clk := clockAt(time.Hour)
		if _, err := lease.Wait(ctx, path, time.Minute, lease.WithClock(clk)); !errors.Is(err, lease.ErrHeld) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait with a cancelled context: %v", err)
		}
	})
	wantHeldBy(t, path, a, holder)
	if err := holder.Renew(); err != nil {
		t.Fatalf("holder's Renew after waits gave up: %v", err)
	}
}

// TestWaitWokenByRelease: a Release by the holder ends a Wait promptly. Real
// clock: the bound on the wait is generous and never asserted as a time.
func TestWaitWokenByRelease(t *testing.T) {
	path := leasePathIn(t)
	holder := mustAcquireLease(t, path, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := startWait(t, ctx, path, time.Hour)
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	r := <-w.res
	if r.err != nil {
		t.Fatalf("Wait after Release: %v", r.err)
	}
	if r.l.Epoch() <= holder.Epoch() {
		t.Fatalf("epoch %d, not above %d", r.l.Epoch(), holder.Epoch())
	}
	wantHeldBy(t, path, fakeclock.New(time.Now()), r.l)
	if err := r.l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestWaitInvalidSettings(t *testing.T) {
	path := leasePathIn(t)
	ctx := context.Background()
	for name, opts := range map[string][]lease.Option{
		"nil clock":     {lease.WithClock(nil)},
		"negative poll": {lease.WithPollInterval(-time.Second)},
		"negative skew": {lease.WithClockSkew(-time.Second)},
	} {
		if _, err := lease.Wait(ctx, path, time.Second, opts...); !errors.Is(err, lease.ErrInvalid) {
			t.Errorf("Wait with %s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := lease.Wait(ctx, path, 0); !errors.Is(err, lease.ErrInvalid) {
		t.Errorf("Wait with ttl 0: %v, want ErrInvalid", err)
	}
}
