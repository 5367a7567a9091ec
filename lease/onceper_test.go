package lease_test

// Once per slot (WithOncePer), ReleaseWithStatus and ReleaseEpoch, over a
// store in memory with a fake clock.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
)

// slotClock is a fake clock a minute into an hour slot.
func slotClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2030, 6, 1, 12, 1, 0, 0, time.UTC))
}

func TestSlotOf(t *testing.T) {
	for _, tc := range []struct {
		t     time.Time
		every time.Duration
		want  time.Time
	}{
		{time.Date(2030, 6, 1, 12, 34, 56, 7, time.UTC), time.Hour, time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)},
		{time.Date(2030, 6, 1, 12, 34, 56, 7, time.FixedZone("x", 5*3600+1800)), 24 * time.Hour, time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC), time.Hour, time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)},
		{time.Date(2030, 6, 1, 12, 0, 1, 999, time.UTC), 2 * time.Second, time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)},
		{time.Unix(-3, 0), 2 * time.Second, time.Unix(-4, 0).UTC()},
	} {
		if got := lease.SlotOf(tc.t, tc.every); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("SlotOf(%v, %v) = %v, want %v (UTC)", tc.t, tc.every, got, tc.want)
		}
	}
}

func TestOncePerOneRunPerSlot(t *testing.T) {
	const ttl = 10 * time.Second
	clk := slotClock()
	m := leasetest.NewMemStore("once")
	opts := []lease.Option{lease.WithClock(clk), lease.WithOncePer(time.Hour)}
	l, err := lease.AcquireStore(m, ttl, opts...)
	if err != nil {
		t.Fatal(err)
	}
	slot := l.Record().Slot
	if slot == nil || !slot.Start.Equal(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)) || slot.Length != time.Hour ||
		slot.Epoch != l.Epoch() || slot.ExitStatus != nil {
		t.Fatalf("slot of the acquisition: %+v", slot)
	}
	// While it runs, others in the slot are done, not held off.
	if _, err := lease.AcquireStore(m, ttl, opts...); !errors.Is(err, lease.ErrDone) || errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire while the slot's run holds: %v, want ErrDone", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := lease.WaitStore(ctx, m, ttl, opts...); !errors.Is(err, lease.ErrDone) {
		t.Fatalf("Wait while the slot's run holds: %v, want ErrDone at once", err)
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if err := l.ReleaseWithStatus(3); err != nil {
		t.Fatal(err)
	}
	st := readStore(t, m, clk)
	if st.State != lease.StateReleased || st.Record.Slot == nil || st.Record.Slot.ExitStatus == nil || *st.Record.Slot.ExitStatus != 3 ||
		st.Record.Slot.Epoch != l.Epoch() {
		t.Fatalf("after ReleaseWithStatus(3): %s %+v", st.State, st.Record.Slot)
	}
	// Later in the same slot: still done, a failed run included.
	clk.Advance(50 * time.Minute)
	_, err = lease.AcquireStore(m, ttl, opts...)
	if !errors.Is(err, lease.ErrDone) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Acquire later in the slot: %v, want ErrDone naming exit status 3", err)
	}
	// The next slot runs.
	clk.Advance(10 * time.Minute)
	l2, err := lease.AcquireStore(m, ttl, opts...)
	if err != nil {
		t.Fatalf("Acquire in the next slot: %v", err)
	}
	if s := l2.Record().Slot; !s.Start.Equal(time.Date(2030, 6, 1, 13, 0, 0, 0, time.UTC)) || s.Epoch != l.Epoch()+1 {
		t.Fatalf("slot of the next run: %+v", s)
	}
	if err := l2.ReleaseWithStatus(0); err != nil {
		t.Fatal(err)
	}
}

// A run of an earlier slot that still holds keeps the next slot's run out
// as any holder does: ErrHeld, and a standby takes over when it releases.
func TestOncePerHeldByEarlierSlot(t *testing.T) {
	const ttl = 2 * time.Minute
	clk := slotClock()
	m := leasetest.NewMemStore("earlier")
	opts := []lease.Option{lease.WithClock(clk), lease.WithOncePer(time.Minute)}
	l, err := lease.AcquireStore(m, ttl, opts...)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.AcquireStore(m, ttl, opts...); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire in the next slot while the last one's run holds: %v, want ErrHeld", err)
	}
	got := make(chan error, 1)
	go func() {
		l2, err := lease.WaitStore(context.Background(), m, ttl, opts...)
		if err == nil && l2.Record().Slot.Epoch != l2.Epoch() {
			err = errors.New("the standby's acquisition has no slot of its own")
		}
		got <- err
	}()
	if err := l.ReleaseWithStatus(0); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the standby did not take the lease after the release")
	}
}

// Acquisitions without WithOncePer carry the slot forward, and their
// ReleaseWithStatus does not write into a slot that is not theirs.
func TestOncePerCarriedForward(t *testing.T) {
	const ttl = 10 * time.Second
	clk := slotClock()
	m := leasetest.NewMemStore("carry")
	once := []lease.Option{lease.WithClock(clk), lease.WithOncePer(time.Hour)}
	l, err := lease.AcquireStore(m, ttl, once...)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ReleaseWithStatus(0); err != nil {
		t.Fatal(err)
	}
	plain, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	if s := plain.Record().Slot; s == nil || s.Epoch != l.Epoch() || s.ExitStatus == nil || *s.ExitStatus != 0 {
		t.Fatalf("slot of a plain acquisition after a slot's run: %+v, want the run's", s)
	}
	if err := plain.ReleaseWithStatus(9); err != nil {
		t.Fatal(err)
	}
	st := readStore(t, m, clk)
	if s := st.Record.Slot; s == nil || s.Epoch != l.Epoch() || *s.ExitStatus != 0 {
		t.Fatalf("a plain holder's ReleaseWithStatus changed the slot: %+v", s)
	}
	if _, err := lease.AcquireStore(m, ttl, once...); !errors.Is(err, lease.ErrDone) {
		t.Fatalf("once-per Acquire in the slot after a plain run: %v, want ErrDone", err)
	}
}

// A record whose slot is later than this host's current one (another
// host's clock is ahead) counts as this slot's run: slots never go back.
func TestOncePerLaterSlotInRecord(t *testing.T) {
	const ttl = 10 * time.Second
	ahead := fakeclock.New(time.Date(2030, 6, 1, 13, 0, 0, 300_000_000, time.UTC))
	behind := fakeclock.New(time.Date(2030, 6, 1, 12, 59, 59, 900_000_000, time.UTC))
	m := leasetest.NewMemStore("skew")
	l, err := lease.AcquireStore(m, ttl, lease.WithClock(ahead), lease.WithOncePer(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ReleaseWithStatus(0); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.AcquireStore(m, ttl, lease.WithClock(behind), lease.WithOncePer(time.Hour)); !errors.Is(err, lease.ErrDone) {
		t.Fatalf("Acquire from a host behind the slot boundary: %v, want ErrDone", err)
	}
}

// Of many acquisitions racing in one slot, exactly one takes the lease;
// with faults injected (lost replies: outcomes unknown), at most one.
func TestOncePerRace(t *testing.T) {
	for _, faults := range []bool{false, true} {
		name := "clean"
		if faults {
			name = "faults"
		}
		t.Run(name, func(t *testing.T) {
			const ttl = time.Minute
			clk := slotClock()
			for round := range 20 {
				m := leasetest.NewMemStore("race")
				if faults {
					m.Before = leasetest.RandomFaults(uint64(round), 0.3)
				}
				var won atomic.Int64
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						for {
							l, err := lease.AcquireStore(m, ttl, lease.WithClock(clk), lease.WithOncePer(time.Hour))
							switch {
							case err == nil:
								won.Add(1)
								l.ReleaseWithStatus(0)
								return
							case errors.Is(err, lease.ErrDone), errors.Is(err, lease.ErrHeld):
								return
							}
							// A fault: try again.
						}
					})
				}
				wg.Wait()
				m.Before = nil
				switch n := won.Load(); {
				case n > 1:
					t.Fatalf("round %d: %d acquisitions in one slot", round, n)
				case n == 0 && !faults:
					t.Fatalf("round %d: nobody acquired", round)
				}
			}
		})
	}
}

// An acquisition whose write had an unknown outcome, found to have taken
// effect, is given back with the slot before it: its run never started.
func TestOncePerAbandonedAcquisitionKeepsSlot(t *testing.T) {
	const ttl = 10 * time.Second
	clk := slotClock()
	m := leasetest.NewMemStore("abandon")
	m.Before = onSwap(1, leasetest.Fault{LoseReply: true})
	if _, err := lease.AcquireStore(m, ttl, lease.WithClock(clk), lease.WithOncePer(time.Hour)); err == nil {
		t.Fatal("Acquire whose reply was lost succeeded")
	}
	st := readStore(t, m, clk)
	if st.State != lease.StateReleased || st.Record.Slot != nil {
		t.Fatalf("after an abandoned acquisition: %s, slot %+v; want released with no slot", st.State, st.Record.Slot)
	}
	if _, err := lease.AcquireStore(m, ttl, lease.WithClock(clk), lease.WithOncePer(time.Hour)); err != nil {
		t.Fatalf("the slot was spent by an acquisition that never ran: %v", err)
	}
}

// Records of builds before slots decode, and a record with a slot decodes
// as one without for a reader that does not know the field (encoding/json
// ignores unknown fields, as decodeRecord's decoder does).
func TestSlotCompatibility(t *testing.T) {
	clk := slotClock()
	m := leasetest.NewMemStore("compat")
	old := `{"instance_id":"0b6f5a8e","pid":1,"host":"h","acquired_at":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:30Z","ttl":0,"epoch":4}` + "\n"
	m.Set([]byte(old))
	st := readStore(t, m, clk)
	if st.State != lease.StateReleased || st.Record.Epoch != 4 || st.Record.Slot != nil {
		t.Fatalf("an older build's record: %s %+v", st.State, st.Record)
	}
	l, err := lease.AcquireStore(m, time.Minute, lease.WithClock(clk), lease.WithOncePer(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ReleaseWithStatus(0); err != nil {
		t.Fatal(err)
	}
	v, err := m.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(v.Data), `"slot":{"start":"2030-06-01T12:00:00Z","length":3600000000000,"epoch":5,"exit_status":0}`) {
		t.Fatalf("record: %s", v.Data)
	}
	// The Record of the build before slots, as it decodes.
	var before struct {
		InstanceID string            `json:"instance_id"`
		PID        int               `json:"pid"`
		Host       string            `json:"host"`
		AcquiredAt time.Time         `json:"acquired_at"`
		RenewedAt  time.Time         `json:"renewed_at"`
		TTL        time.Duration     `json:"ttl"`
		Meta       map[string]string `json:"meta,omitempty"`
		Epoch      uint64            `json:"epoch"`
	}
	if err := json.Unmarshal(v.Data, &before); err != nil || before.Epoch != 5 || before.InstanceID != l.InstanceID() {
		t.Fatalf("decoded as before slots: %+v, %v", before, err)
	}
	// A hand-made slot that no writer makes is no slot; the lease is
	// still read as what it is.
	m.Set([]byte(strings.Replace(string(v.Data), `"length":3600000000000`, `"length":0`, 1)))
	if st := readStore(t, m, clk); st.State != lease.StateReleased || st.Record.Slot != nil {
		t.Fatalf("record with an impossible slot: %s %+v", st.State, st.Record)
	}
}

func TestOncePerInvalid(t *testing.T) {
	m := leasetest.NewMemStore("invalid")
	if _, err := lease.AcquireStore(m, time.Minute, lease.WithOncePer(-time.Second)); !errors.Is(err, lease.ErrInvalid) {
		t.Fatalf("negative once-per: %v, want ErrInvalid", err)
	}
}

func TestReleaseEpoch(t *testing.T) {
	const ttl = 10 * time.Second
	ctx := context.Background()
	clk := slotClock()
	m := leasetest.NewMemStore("force")
	first, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	first.Release()
	l, err := lease.AcquireStore(m, ttl, lease.WithClock(clk), lease.WithOncePer(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := m.Load(ctx)

	// A stale epoch, or one not reached: nothing written.
	for _, epoch := range []uint64{l.Epoch() - 1, l.Epoch() + 1} {
		_, err := lease.ReleaseEpoch(ctx, m, epoch, lease.WithClock(clk))
		if !errors.Is(err, lease.ErrNotEpoch) || !strings.Contains(err.Error(), "held by "+l.InstanceID()) {
			t.Fatalf("ReleaseEpoch(%d) of epoch %d: %v, want ErrNotEpoch saying who holds", epoch, l.Epoch(), err)
		}
		if now, _ := m.Load(ctx); now.Rev != before.Rev {
			t.Fatalf("ReleaseEpoch(%d) wrote: revision %s -> %s", epoch, before.Rev, now.Rev)
		}
	}
	if _, err := lease.ReleaseEpoch(ctx, m, 0); !errors.Is(err, lease.ErrInvalid) {
		t.Fatalf("ReleaseEpoch(0): %v, want ErrInvalid", err)
	}

	// The right one: released at once, epoch and slot kept.
	rec, err := lease.ReleaseEpoch(ctx, m, l.Epoch(), lease.WithClock(clk))
	if err != nil || rec.InstanceID != l.InstanceID() || rec.Released() {
		t.Fatalf("ReleaseEpoch(%d) = %+v, %v; want the holder's record", l.Epoch(), rec, err)
	}
	st := readStore(t, m, clk)
	if st.State != lease.StateReleased || st.Record.Epoch != l.Epoch() || st.Record.InstanceID != l.InstanceID() ||
		st.Record.Slot == nil || st.Record.Slot.Epoch != l.Epoch() {
		t.Fatalf("after ReleaseEpoch: %s %+v", st.State, st.Record)
	}
	// Again: already released, nothing written.
	rev := func() lease.Revision { v, _ := m.Load(ctx); return v.Rev }
	r1 := rev()
	if rec, err := lease.ReleaseEpoch(ctx, m, l.Epoch(), lease.WithClock(clk)); err != nil || !rec.Released() || rev() != r1 {
		t.Fatalf("ReleaseEpoch of a released epoch: %+v, %v (revision %s -> %s); want nil, no write", rec, err, r1, rev())
	}
	// The holder, still alive, loses the lease at its next renewal.
	clk.Advance(time.Second)
	err = l.Renew()
	if !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "released by another process") {
		t.Fatalf("the holder's Renew after ReleaseEpoch: %v, want ErrLost saying so", err)
	}
	if !l.Expired() {
		t.Fatal("the holder still believes it holds")
	}
	// The next acquisition gets a higher epoch; the slot was spent.
	next, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil || next.Epoch() != l.Epoch()+1 {
		t.Fatalf("Acquire after ReleaseEpoch: %v (epoch %d)", err, next.Epoch())
	}
	if err := l.Release(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("the old holder's Release: %v, want ErrLost", err)
	}
	wantHolder(t, m, clk, next)
}

func wantHolder(t *testing.T, st lease.Store, clk lease.Clock, l *lease.Lease) {
	t.Helper()
	s := readStore(t, st, clk)
	if s.State != lease.StateHeld || s.Record.InstanceID != l.InstanceID() {
		t.Fatalf("lease: %s %+v, want held by %s", s.State, s.Record, l.InstanceID())
	}
}

// A renewal between ReleaseEpoch's read and its write makes it read again,
// and release the renewed record; a lost reply is settled by a read.
func TestReleaseEpochRaces(t *testing.T) {
	const ttl = 10 * time.Second
	ctx := context.Background()
	clk := slotClock()
	m := leasetest.NewMemStore("races")
	l, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	m.Before = func(_ context.Context, c leasetest.Call) leasetest.Fault {
		if c.Op == "swap" && strings.Contains(string(c.Data), `"ttl":0`) {
			once.Do(func() {
				m.Before = nil
				clk.Advance(time.Second)
				if err := l.Renew(); err != nil {
					t.Errorf("Renew: %v", err)
				}
			})
		}
		return leasetest.Fault{}
	}
	if _, err := lease.ReleaseEpoch(ctx, m, l.Epoch(), lease.WithClock(clk)); err != nil {
		t.Fatalf("ReleaseEpoch racing a renewal: %v", err)
	}
	if st := readStore(t, m, clk); st.State != lease.StateReleased {
		t.Fatalf("after ReleaseEpoch racing a renewal: %s", st.State)
	}

	l2, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	m.Before = onSwap(1, leasetest.Fault{LoseReply: true})
	if _, err := lease.ReleaseEpoch(ctx, m, l2.Epoch(), lease.WithClock(clk)); err != nil {
		t.Fatalf("ReleaseEpoch whose reply was lost: %v, want nil (a read shows it)", err)
	}
	m.Before = onSwap(1, leasetest.Fault{Err: errors.New("disk on fire")})
	l3, err := lease.AcquireStore(m, ttl, lease.WithClock(clk))
	if err != nil {
		// the fault hit the acquisition: take it again
		l3, err = lease.AcquireStore(m, ttl, lease.WithClock(clk))
		if err != nil {
			t.Fatal(err)
		}
	}
	m.Before = onSwap(1, leasetest.Fault{Err: errors.New("disk on fire")})
	if _, err := lease.ReleaseEpoch(ctx, m, l3.Epoch(), lease.WithClock(clk)); err == nil || errors.Is(err, lease.ErrNotEpoch) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("ReleaseEpoch whose write failed: %v, want the store's error", err)
	}
	wantHolder(t, m, clk, l3)
}
