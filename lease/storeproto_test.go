package lease_test

// The protocol over a store whose calls fail in chosen ways
// (leasetest.MemStore), with a fake clock: outcomes a store leaves
// unknown, calls that hang, and writes that take time.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
)

// onSwap returns a Before hook that injects f into the next n swaps.
func onSwap(n int, f leasetest.Fault) func(context.Context, leasetest.Call) leasetest.Fault {
	var left atomic.Int64
	left.Store(int64(n))
	return func(_ context.Context, c leasetest.Call) leasetest.Fault {
		if c.Op == "swap" && left.Add(-1) >= 0 {
			return f
		}
		return leasetest.Fault{}
	}
}

func readStore(t *testing.T, st lease.Store, clk lease.Clock) lease.Status {
	t.Helper()
	s, err := lease.ReadStore(context.Background(), st, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A renewal whose reply is lost after it took effect leaves the handle
// holding until its old deadline; the next Renew finds the renewal in the
// store, adopts it, and renews after it.
func TestRenewLostReplyResolved(t *testing.T) {
	const ttl = 10 * time.Second
	clk := clockAt(0)
	m := leasetest.NewMemStore("lost-reply")
	l, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	deadline := l.Deadline()
	clk.Advance(time.Second)
	m.Before = onSwap(1, leasetest.Fault{LoseReply: true})
	err = l.Renew()
	if err == nil || errors.Is(err, lease.ErrLost) || !errors.Is(err, leasetest.ErrLostReply) {
		t.Fatalf("Renew whose reply was lost: %v, want the store's error", err)
	}
	if l.Expired() || !l.Deadline().Equal(deadline) {
		t.Fatalf("after an unknown outcome: Expired %v, Deadline %v; want holding until %v", l.Expired(), l.Deadline(), deadline)
	}
	if s := readStore(t, m, clk); s.State != lease.StateHeld || !s.Record.RenewedAt.Equal(clk.Now()) || s.Record.InstanceID != l.InstanceID() {
		t.Fatalf("the store shows %s %+v, want the renewal at %v", s.State, s.Record, clk.Now())
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err != nil {
		t.Fatalf("Renew after a lost reply: %v", err)
	}
	if want := clk.Now().Add(ttl); !l.Deadline().Equal(want) {
		t.Fatalf("Deadline %v, want %v", l.Deadline(), want)
	}
	if s := readStore(t, m, clk); !s.Record.RenewedAt.Equal(clk.Now()) || s.Record.Epoch != l.Epoch() {
		t.Fatalf("the store shows %+v, want the second renewal", s.Record)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// A renewal whose write failed without taking effect: the next Renew finds
// the handle's own record still current and writes after it.
func TestRenewFailedWriteRetried(t *testing.T) {
	const ttl = 10 * time.Second
	clk := clockAt(0)
	m := leasetest.NewMemStore("failed")
	l, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	m.Before = onSwap(1, leasetest.Fault{Err: errors.New("boom")})
	clk.Advance(time.Second)
	if err := l.Renew(); err == nil || errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew: %v, want the store's error", err)
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err != nil {
		t.Fatalf("Renew retried: %v", err)
	}
	if s := readStore(t, m, clk); s.State != lease.StateHeld || !s.Record.RenewedAt.Equal(clk.Now()) {
		t.Fatalf("the store shows %s %+v", s.State, s.Record)
	}
}

// A renewal whose reply was lost while another instance took over after
// it: the handle has lost.
func TestRenewLostReplyThenTakeover(t *testing.T) {
	const ttl = 10 * time.Second
	clk := clockAt(0)
	m := leasetest.NewMemStore("taken")
	l, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	m.Before = onSwap(1, leasetest.Fault{LoseReply: true})
	clk.Advance(time.Second)
	if err := l.Renew(); err == nil {
		t.Fatal("Renew with a lost reply succeeded")
	}
	other := clockAt(time.Second + ttl) // the renewal has expired for it
	taker, err := lease.AcquireStore(m, ttl, lease.WithClock(other))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew after a takeover: %v, want ErrLost", err)
	}
	if !l.Expired() {
		t.Fatal("not Expired after ErrLost")
	}
	if s := readStore(t, m, other); s.Record.InstanceID != taker.InstanceID() || s.State != lease.StateHeld {
		t.Fatalf("the store shows %s %+v, want held by the taker", s.State, s.Record)
	}
}

// An acquisition whose reply is lost after it took effect is given up, so
// that it does not block the lease for a TTL.
func TestAcquireLostReplyGivenUp(t *testing.T) {
	const ttl = time.Hour
	clk := clockAt(0)
	m := leasetest.NewMemStore("acquire")
	m.Before = onSwap(1, leasetest.Fault{LoseReply: true})
	if l, err := lease.AcquireStore(m, ttl, lease.WithClock(clk)); err == nil || errors.Is(err, lease.ErrHeld) {
		t.Fatalf("AcquireStore with a lost reply: %v, %v; want the store's error", l, err)
	}
	s := readStore(t, m, clk)
	if s.State != lease.StateReleased || s.Record.Epoch != 1 {
		t.Fatalf("after the lost acquisition the store shows %s %+v, want it released", s.State, s.Record)
	}
	l, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	if l.Epoch() != 2 {
		t.Fatalf("epoch %d, want 2", l.Epoch())
	}
}

// A release whose reply is lost can be retried, and leaves the lease
// released.
func TestReleaseLostReplyRetried(t *testing.T) {
	clk := clockAt(0)
	m := leasetest.NewMemStore("release")
	l, err := lease.AcquireStore(m, time.Hour, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	m.Before = onSwap(1, leasetest.Fault{LoseReply: true})
	if err := l.Release(); err == nil {
		t.Fatal("Release with a lost reply succeeded")
	}
	if err := l.Release(); err != nil {
		t.Fatalf("Release retried: %v", err)
	}
	if s := readStore(t, m, clk); s.State != lease.StateReleased {
		t.Fatalf("the store shows %s, want released", s.State)
	}
}

// A Swap that hangs ends at the holder's deadline: Renew returns then,
// with the context's error, and the handle has expired.
func TestRenewHungSwapEndsAtDeadline(t *testing.T) {
	const ttl = 300 * time.Millisecond
	m := leasetest.NewMemStore("hung")
	l, err := lease.AcquireStore(m, ttl)
	if err != nil {
		t.Fatal(err)
	}
	m.Before = onSwap(1, leasetest.Fault{Hang: true})
	start := time.Now()
	err = l.Renew()
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Renew with a hung Swap: %v, want DeadlineExceeded", err)
	}
	if left := time.Until(l.Deadline()); left > 5*time.Millisecond || took > ttl+time.Second {
		t.Fatalf("Renew returned %v before the deadline after %v; want it to end at the deadline", left, took)
	}
	if !l.Expired() {
		t.Fatal("not Expired after its deadline")
	}
	m.Before = nil
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew after the deadline: %v, want ErrLost", err)
	}
}

// A hung Load ends a one-shot Acquire within its TTL, and a Wait with its
// context.
func TestHungLoadBounded(t *testing.T) {
	const ttl = 200 * time.Millisecond
	m := leasetest.NewMemStore("hung-load")
	m.Before = func(_ context.Context, c leasetest.Call) leasetest.Fault {
		return leasetest.Fault{Hang: c.Op == "load"}
	}
	start := time.Now()
	if _, err := lease.AcquireStore(m, ttl); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AcquireStore with a hung Load: %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > ttl+time.Second {
		t.Fatalf("AcquireStore took %v", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := lease.WaitStore(ctx, m, time.Hour)
	if !errors.Is(err, lease.ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitStore with a hung Load: %v, want ErrHeld and DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("WaitStore took %v after its context ended", took)
	}
}

// The holder's deadline counts from before the write: a write that takes
// three seconds leaves three seconds less.
func TestDeadlineCountsFromBeforeTheWrite(t *testing.T) {
	const ttl, slow = 10 * time.Second, 3 * time.Second
	clk := clockAt(0)
	m := leasetest.NewMemStore("slow")
	slowSwaps := func(_ context.Context, c leasetest.Call) leasetest.Fault {
		if c.Op == "swap" {
			clk.Advance(slow)
		}
		return leasetest.Fault{}
	}
	m.Before = slowSwaps
	start := clk.Now()
	l, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(ttl); !l.Deadline().Equal(want) {
		t.Fatalf("Deadline after a slow acquisition %v, want %v", l.Deadline(), want)
	}
	clk.Advance(time.Second)
	start = clk.Now()
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if want := start.Add(ttl); !l.Deadline().Equal(want) {
		t.Fatalf("Deadline after a slow renewal %v, want %v", l.Deadline(), want)
	}
	if got := l.Record().RenewedAt; !got.Equal(start) {
		t.Fatalf("RenewedAt %v, want the instant before the write, %v", got, start)
	}

	// A renewal slower than what is left of the lease: it lapsed while
	// being written, so the handle has lost and gives the lease up.
	clk.Advance(ttl - slow)
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("a renewal that outlasted the deadline: %v, want ErrLost", err)
	}
	if s := readStore(t, m, clk); s.State != lease.StateReleased {
		t.Fatalf("the store shows %s, want the lapsed renewal given up", s.State)
	}
}
