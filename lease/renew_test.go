package lease_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

func TestRenewExtends(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))

	clk.Advance(ttl / 2)
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	r := l.Record()
	if !r.AcquiredAt.Equal(epoch0) || !r.RenewedAt.Equal(clk.Now()) {
		t.Fatalf("after Renew: acquired %v renewed %v, want %v and %v", r.AcquiredAt, r.RenewedAt, epoch0, clk.Now())
	}
	if got := readPublished(t, path); !got.RenewedAt.Equal(clk.Now()) || got.Epoch != l.Epoch() {
		t.Fatalf("published after Renew: %+v", got)
	}
	// Past the first TTL the lease is still held, for others and for itself.
	clk.Advance(ttl/2 + 1)
	if l.Expired() {
		t.Fatal("Expired after Renew extended the lease")
	}
	if _, err := lease.Acquire(path, ttl, lease.WithClock(clk)); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire after the first TTL of a renewed lease: %v, want ErrHeld", err)
	}
	wantHeldBy(t, path, clk, l)
}

func TestRenewAfterTakeover(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	a := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(a))
	b := clockAt(2 * ttl)
	taker := mustAcquireLease(t, path, ttl, lease.WithClock(b))

	a.Advance(ttl / 2) // in its own eyes l still holds
	if l.Expired() {
		t.Fatal("Expired before the deadline")
	}
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew after takeover: %v, want ErrLost", err)
	}
	if !l.Expired() {
		t.Fatal("not Expired after ErrLost")
	}
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("second Renew after takeover: %v, want ErrLost", err)
	}
	wantHeldBy(t, path, b, taker)
	if err := taker.Renew(); err != nil {
		t.Fatalf("taker's Renew: %v", err)
	}
}

// TestRenewAfterOwnExpiry: once the handle's lease has lapsed Renew says
// ErrLost even though nobody took over, and gives the lease up so that it
// is free at once, not only when the record's wall-clock TTL runs out.
func TestRenewAfterOwnExpiry(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	a := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(a))
	a.Advance(ttl)
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew after own expiry: %v, want ErrLost", err)
	}
	if !l.Expired() {
		t.Fatal("not Expired")
	}

	// A challenger whose clock says the record is young finds it released.
	b := clockAt(0)
	st := mustReadStatus(t, path, lease.WithClock(b))
	if st.State != lease.StateReleased || st.Record == nil || st.Record.InstanceID != l.InstanceID() || !st.Record.Released() {
		t.Fatalf("Read after lapsed Renew = %s %+v, want released by %s", st.State, st.Record, l.InstanceID())
	}
	taker := mustAcquireLease(t, path, ttl, lease.WithClock(b))
	if taker.Epoch() <= l.Epoch() {
		t.Fatalf("epoch %d after lapse, not above %d", taker.Epoch(), l.Epoch())
	}
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew of the lapsed handle after a new acquisition: %v, want ErrLost", err)
	}
	wantHeldBy(t, path, b, taker)
}

// A lapsed handle gives the lease up once: Renew called again and again
// after ErrLost writes nothing more.
func TestRenewAfterOwnExpiryGivesUpOnce(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	clk.Advance(ttl)
	versions := func() []string {
		entries, err := os.ReadDir(path + ".d")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			if _, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
				names = append(names, e.Name())
			}
		}
		return names
	}
	for i := range 3 {
		if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Renew %d after own expiry: %v, want ErrLost", i+1, err)
		}
		if got := versions(); len(got) != 2 {
			t.Fatalf("after Renew %d of a lapsed handle, versions %v, want the acquisition and one release", i+1, got)
		}
	}
}

func TestRenewAfterRelease(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, time.Minute, lease.WithClock(clk))
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(); !errors.Is(err, lease.ErrReleased) {
		t.Fatalf("Renew after Release: %v, want ErrReleased", err)
	}
	// Even after someone else acquired.
	mustAcquireLease(t, path, time.Minute, lease.WithClock(clk))
	if err := l.Renew(); !errors.Is(err, lease.ErrReleased) {
		t.Fatalf("Renew after Release and a new acquisition: %v, want ErrReleased", err)
	}
}

// TestRenewManyTimes renews past several cleanups of old versions.
func TestRenewManyTimes(t *testing.T) {
	const ttl = time.Minute
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	for i := range 100 {
		clk.Advance(time.Second)
		if err := l.Renew(); err != nil {
			t.Fatalf("Renew %d: %v", i, err)
		}
	}
	if vs := versions(t, path); len(vs) > 20 {
		t.Errorf("%d versions left after 100 renewals: old ones are not cleaned up", len(vs))
	}
	if l.Epoch() != 1 {
		t.Errorf("epoch %d after renewals, want 1", l.Epoch())
	}
	wantHeldBy(t, path, clk, l)
	if _, err := lease.Acquire(path, ttl, lease.WithClock(clk)); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire: %v, want ErrHeld", err)
	}
}

// TestRenewRetryAfterIOError: a Renew that fails with an I/O error (here the
// publishing rename, made to fail by a directory at PATH) leaves the handle
// holding until its old deadline, and a retry succeeds.
func TestRenewRetryAfterIOError(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	deadline := l.Deadline()

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o777); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	err := l.Renew()
	if err == nil || errors.Is(err, lease.ErrLost) || errors.Is(err, lease.ErrReleased) {
		t.Fatalf("Renew with a directory at PATH: %v, want an I/O error", err)
	}
	if l.Expired() || !l.Deadline().Equal(deadline) {
		t.Fatalf("after a failed Renew: Expired %v, Deadline %v; want holding until %v", l.Expired(), l.Deadline(), deadline)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err != nil {
		t.Fatalf("Renew retried: %v", err)
	}
	if got, want := l.Deadline(), clk.Now().Add(ttl); !got.Equal(want) {
		t.Fatalf("Deadline after the retry = %v, want %v", got, want)
	}
	wantHeldBy(t, path, clk, l)
	if got := readPublished(t, path); got.InstanceID != l.InstanceID() || !got.RenewedAt.Equal(clk.Now()) {
		t.Fatalf("published after the retry: %+v", got)
	}
}

// TestRenewAfterOwnExpiryWithPendingVersion: a renewal linked its version
// but failed to publish it (an I/O error: here a directory at PATH), so the
// handle does not know whether its version counts. A Renew made once the
// deadline has passed must recognise that version as its own, not as
// another holder's, and give it up, so that the lease is free at once
// instead of blocked for a TTL by a record nobody holds.
func TestRenewAfterOwnExpiryWithPendingVersion(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o777); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err == nil || errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew with a directory at PATH: %v, want an I/O error", err)
	}
	if newestVersion(t, path) != 2 {
		t.Fatalf("the failed renewal did not link version 2: versions %v", versions(t, path))
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	clk.Advance(ttl) // past the handle's deadline, not past version 2's expiry
	err := l.Renew()
	if !errors.Is(err, lease.ErrLost) || strings.Contains(err.Error(), "held by "+l.InstanceID()) {
		t.Fatalf("Renew after the deadline: %v; want ErrLost that does not name the handle as another holder", err)
	}
	if !l.Expired() {
		t.Fatal("the handle is not Expired after ErrLost")
	}
	st := mustReadStatus(t, path, lease.WithClock(clk))
	if st.State != lease.StateReleased || st.Record.InstanceID != l.InstanceID() {
		t.Fatalf("after the lapsed Renew: %s %+v; want released by %s", st.State, st.Record, l.InstanceID())
	}
	if vs := versions(t, path); vs[len(vs)-1] != 3 {
		t.Fatalf("versions %v; want the release as version 3, after the handle's own version 2", vs)
	}
	c, err := lease.Acquire(path, ttl, lease.WithClock(clk))
	if err != nil {
		t.Fatalf("Acquire after the lapsed holder gave up: %v", err)
	}
	if c.Epoch() != l.Epoch()+1 {
		t.Fatalf("epoch %d after %d", c.Epoch(), l.Epoch())
	}
	if err := l.Release(); !errors.Is(err, lease.ErrLost) && err != nil {
		t.Fatalf("Release of the lapsed handle: %v", err)
	}
	wantHeldBy(t, path, clk, c)
}

// TestRenewRacingTakeover: a holder renewing late (by the challenger's
// clock) and a challenger taking over the lease it judges expired. Exactly
// one wins: Renew succeeds and Acquire says ErrHeld, or Acquire succeeds and
// Renew says ErrLost.
func TestRenewRacingTakeover(t *testing.T) {
	const ttl = 10 * time.Second
	// The holder renews at +ttl/2 on its clock, the challenger acts at
	// +ttl on its own: the first record is expired for it, the renewed one
	// is not.
	setup := func(t *testing.T) (path string, holder *lease.Lease, challengerClock lease.Clock) {
		path = leasePathIn(t)
		a := clockAt(0)
		holder = mustAcquireLease(t, path, ttl, lease.WithClock(a))
		a.Advance(ttl / 2)
		return path, holder, clockAt(ttl)
	}
	check := func(t *testing.T, path string, holder *lease.Lease, b lease.Clock, renewErr error, taker *lease.Lease, acqErr error) {
		t.Helper()
		switch {
		case renewErr == nil && errors.Is(acqErr, lease.ErrHeld) && taker == nil:
			wantHeldBy(t, path, b, holder)
			if holder.Expired() {
				t.Fatal("renewal won but the holder is Expired")
			}
		case acqErr == nil && errors.Is(renewErr, lease.ErrLost):
			wantHeldBy(t, path, b, taker)
			if !holder.Expired() {
				t.Fatal("takeover won but the old holder is not Expired")
			}
		default:
			t.Fatalf("Renew: %v; Acquire: %v; want exactly one to win", renewErr, acqErr)
		}
	}

	t.Run("renewal first", func(t *testing.T) {
		path, holder, b := setup(t)
		renewErr := holder.Renew()
		taker, acqErr := lease.Acquire(path, ttl, lease.WithClock(b))
		if renewErr != nil {
			t.Fatalf("Renew first: %v", renewErr)
		}
		check(t, path, holder, b, renewErr, taker, acqErr)
	})
	t.Run("takeover first", func(t *testing.T) {
		path, holder, b := setup(t)
		taker, acqErr := lease.Acquire(path, ttl, lease.WithClock(b))
		renewErr := holder.Renew()
		if acqErr != nil {
			t.Fatalf("Acquire first: %v", acqErr)
		}
		check(t, path, holder, b, renewErr, taker, acqErr)
	})
	t.Run("at once", func(t *testing.T) {
		wins := map[string]int{}
		for range 50 {
			path, holder, b := setup(t)
			var (
				wg       sync.WaitGroup
				start    = make(chan struct{})
				renewErr error
				taker    *lease.Lease
				acqErr   error
			)
			wg.Go(func() { <-start; renewErr = holder.Renew() })
			wg.Go(func() { <-start; taker, acqErr = lease.Acquire(path, ttl, lease.WithClock(b)) })
			close(start)
			wg.Wait()
			check(t, path, holder, b, renewErr, taker, acqErr)
			if renewErr == nil {
				wins["renewal"]++
			} else {
				wins["takeover"]++
			}
		}
		t.Logf("wins: %v", wins)
	})
}
