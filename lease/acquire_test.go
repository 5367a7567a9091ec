package lease_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/lease"
)

func TestAcquireFree(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	if st := mustReadStatus(t, path, lease.WithClock(clk)); st.State != lease.StateFree || st.Record != nil {
		t.Fatalf("Read before Acquire = %s %+v, want free", st.State, st.Record)
	}
	l := mustAcquireLease(t, path, time.Minute, lease.WithClock(clk))
	if l.Expired() {
		t.Fatal("Expired right after Acquire")
	}
	wantHeldBy(t, path, clk, l)
	if l.Epoch() != 1 {
		t.Errorf("first epoch = %d, want 1", l.Epoch())
	}
}

func TestAcquireHeld(t *testing.T) {
	const ttl = time.Minute
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	before := versions(t, path)

	for _, at := range []time.Duration{0, time.Second, ttl - 1} {
		other, err := lease.Acquire(path, ttl, lease.WithClock(clockAt(at)))
		if !errors.Is(err, lease.ErrHeld) || other != nil {
			t.Fatalf("second Acquire at +%v: %v, %v; want ErrHeld", at, other, err)
		}
	}
	// A longer or shorter ttl asked by the challenger changes nothing.
	if _, err := lease.Acquire(path, time.Nanosecond, lease.WithClock(clockAt(ttl-1))); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire with a short ttl: %v, want ErrHeld", err)
	}
	if got := versions(t, path); len(got) != len(before) {
		t.Fatalf("a failed Acquire wrote versions: %v -> %v", before, got)
	}
	wantHeldBy(t, path, clk, l)
	if err := l.Renew(); err != nil {
		t.Fatalf("holder's Renew after failed challenges: %v", err)
	}
}

func TestAcquireAfterExpiryTakesOver(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	a := clockAt(0)
	old := mustAcquireLease(t, path, ttl, lease.WithClock(a))

	b := clockAt(ttl) // the record's RenewedAt+TTL: expired from here on
	l := mustAcquireLease(t, path, ttl, lease.WithClock(b))
	if l.InstanceID() == old.InstanceID() {
		t.Fatal("takeover kept the old InstanceID")
	}
	if l.Epoch() <= old.Epoch() {
		t.Fatalf("takeover epoch %d, not above %d", l.Epoch(), old.Epoch())
	}
	wantHeldBy(t, path, b, l)

	// The old holder, whose clock says it still holds, finds out at Renew.
	if err := old.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("old holder's Renew: %v, want ErrLost", err)
	}
	if !old.Expired() {
		t.Fatal("old holder not Expired after ErrLost")
	}
	wantHeldBy(t, path, b, l)
}

// TestAcquireAfterExpiryOneClock: the same, with one clock for both handles
// advanced past the TTL.
func TestAcquireAfterExpiryOneClock(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	old := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	clk.Advance(ttl - 1)
	if _, err := lease.Acquire(path, ttl, lease.WithClock(clk)); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire 1ns before expiry: %v, want ErrHeld", err)
	}
	clk.Advance(1)
	if !old.Expired() {
		t.Fatal("holder not Expired at its TTL")
	}
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	wantHeldBy(t, path, clk, l)
	if err := old.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("old holder's Renew: %v, want ErrLost", err)
	}
	wantHeldBy(t, path, clk, l)
}

func TestAcquireInvalidSettings(t *testing.T) {
	path := leasePathIn(t)
	for name, call := range map[string]func() error{
		"empty path":     func() error { _, err := lease.Acquire("", time.Second); return err },
		"zero ttl":       func() error { _, err := lease.Acquire(path, 0); return err },
		"negative ttl":   func() error { _, err := lease.Acquire(path, -time.Second); return err },
		"negative skew":  func() error { _, err := lease.Acquire(path, time.Second, lease.WithClockSkew(-1)); return err },
		"negative poll":  func() error { _, err := lease.Acquire(path, time.Second, lease.WithPollInterval(-1)); return err },
		"nil clock":      func() error { _, err := lease.Acquire(path, time.Second, lease.WithClock(nil)); return err },
		"Read nil clock": func() error { _, err := lease.Read(path, lease.WithClock(nil)); return err },
		"Read no path":   func() error { _, err := lease.Read(""); return err },
	} {
		if err := call(); !errors.Is(err, lease.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// TestDeadlineFromWriteStart: the holder's expiry counts from the clock
// reading taken before the write (the write itself can't be slowed here, so
// check that the deadline is exactly that reading plus the TTL).
func TestDeadlineFromWriteStart(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	if got, want := l.Deadline(), epoch0.Add(ttl); !got.Equal(want) {
		t.Fatalf("Deadline after Acquire = %v, want %v", got, want)
	}
	clk.Advance(ttl - 1)
	if l.Expired() {
		t.Fatal("Expired 1ns before the deadline")
	}
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	renewed := clk.Now()
	if got, want := l.Deadline(), renewed.Add(ttl); !got.Equal(want) {
		t.Fatalf("Deadline after Renew = %v, want %v", got, want)
	}
	if got := l.Record().RenewedAt; !got.Equal(renewed) {
		t.Fatalf("RenewedAt = %v, want %v", got, renewed)
	}
	clk.Advance(ttl)
	if !l.Expired() {
		t.Fatal("not Expired at the deadline")
	}
	if !l.Expired() {
		t.Fatal("Expired went back to false")
	}
}

// TestRecordRenewedInFutureIsHeld: a record whose times lie ahead of the
// challenger's clock (skew) is held, however old its TTL says it is.
func TestRecordRenewedInFutureIsHeld(t *testing.T) {
	const ttl = time.Second
	path := leasePathIn(t)
	holder := mustAcquireLease(t, path, ttl, lease.WithClock(clockAt(time.Hour)))
	for _, at := range []time.Duration{0, time.Hour - 1} {
		c := clockAt(at)
		if _, err := lease.Acquire(path, ttl, lease.WithClock(c)); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("Acquire at +%v of a record renewed at +1h: %v, want ErrHeld", at, err)
		}
		wantHeldBy(t, path, c, holder)
	}
}

func TestClockSkewExtendsHeld(t *testing.T) {
	const ttl, skew = 10 * time.Second, 2 * time.Second
	path := leasePathIn(t)
	holder := mustAcquireLease(t, path, ttl, lease.WithClock(clockAt(0)))

	for _, at := range []time.Duration{ttl, ttl + skew - 1} {
		c := clockAt(at)
		if _, err := lease.Acquire(path, ttl, lease.WithClock(c), lease.WithClockSkew(skew)); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("Acquire at +%v with skew %v: %v, want ErrHeld", at, skew, err)
		}
		if st := mustReadStatus(t, path, lease.WithClock(c), lease.WithClockSkew(skew)); st.State != lease.StateHeld {
			t.Fatalf("Read at +%v with skew %v = %s, want held", at, skew, st.State)
		}
		if st := mustReadStatus(t, path, lease.WithClock(c)); st.State != lease.StateExpired {
			t.Fatalf("Read at +%v without skew = %s, want expired", at, st.State)
		}
	}
	// A record renewed up to skew in the challenger's future is held too.
	if _, err := lease.Acquire(path, ttl, lease.WithClock(clockAt(-skew-ttl)), lease.WithClockSkew(skew)); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire with the record in the future: %v, want ErrHeld", err)
	}

	c := clockAt(ttl + skew)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(c), lease.WithClockSkew(skew))
	if l.Epoch() <= holder.Epoch() {
		t.Fatalf("epoch %d after takeover, not above %d", l.Epoch(), holder.Epoch())
	}
}

func TestAcquireWithMeta(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	meta := map[string]string{"endpoint": "http://10.0.0.7:8080", "zone": "b"}
	l := mustAcquireLease(t, path, time.Minute, lease.WithClock(clk), lease.WithMeta(meta))
	meta["zone"] = "changed after Acquire" // WithMeta copies

	st := mustReadStatus(t, path, lease.WithClock(clk))
	if st.Record == nil || st.Record.Meta["endpoint"] != "http://10.0.0.7:8080" || st.Record.Meta["zone"] != "b" || len(st.Record.Meta) != 2 {
		t.Fatalf("Read Meta = %+v, want the Meta given at Acquire", st.Record)
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if st := mustReadStatus(t, path, lease.WithClock(clk)); st.Record.Meta["zone"] != "b" {
		t.Fatalf("Meta after Renew = %v", st.Record.Meta)
	}
}

// TestAcquireOversizedMeta: a record larger than MaxRecordSize is unreadable
// to everyone else, and an unreadable lease is free. So Acquire must refuse
// a Meta that makes the record that large; if it writes it, a second
// Acquire takes the lease while the first still believes it holds.
func TestAcquireOversizedMeta(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	meta := map[string]string{"blob": strings.Repeat("x", lease.MaxRecordSize)}
	first, err := lease.Acquire(path, time.Minute, lease.WithClock(clk), lease.WithMeta(meta))
	if err != nil {
		return // refused: fine
	}
	second, err := lease.Acquire(path, time.Minute, lease.WithClock(clk))
	if err == nil {
		t.Fatalf("two holders at once: %s (Meta of %d bytes) and %s; Expired: %v, %v",
			first.InstanceID(), len(meta["blob"]), second.InstanceID(), first.Expired(), second.Expired())
	}
	if !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("second Acquire: %v, want ErrHeld", err)
	}
}

var _ lease.Clock = (*fakeclock.Clock)(nil)

// TestAcquireSlowerThanTTL: a TTL shorter than the write itself (here 1ns)
// makes a lease that lapsed before Acquire or Wait could return it: they
// release it again and fail with ErrLost, as documented, but with words of
// their own, since nobody took the lease over.
func TestAcquireSlowerThanTTL(t *testing.T) {
	for _, via := range []string{"Acquire", "Wait"} {
		t.Run(via, func(t *testing.T) {
			path := leasePathIn(t)
			var err error
			if via == "Acquire" {
				_, err = lease.Acquire(path, time.Nanosecond)
			} else {
				_, err = lease.Wait(context.Background(), path, time.Nanosecond)
			}
			if !errors.Is(err, lease.ErrLost) {
				t.Fatalf("%s: %v, want ErrLost", via, err)
			}
			if msg := err.Error(); strings.Contains(msg, "taken over") || !strings.Contains(msg, "longer than the ttl 1ns") || !strings.Contains(msg, path) {
				t.Errorf("%s: %q should say that acquiring %s took longer than the ttl, not that anyone took it over", via, msg, path)
			}
			if st := mustReadStatus(t, path); st.State != lease.StateReleased {
				t.Errorf("after %s: %s, want released", via, st.State)
			}
		})
	}
}
