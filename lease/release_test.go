package lease_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

func TestReleaseThenAcquire(t *testing.T) {
	const ttl = time.Hour
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if !l.Expired() {
		t.Fatal("not Expired after Release")
	}
	st := mustReadStatus(t, path, lease.WithClock(clk))
	if st.State != lease.StateReleased || st.Record == nil || !st.Record.Released() ||
		st.Record.InstanceID != l.InstanceID() || st.Record.Epoch != l.Epoch() {
		t.Fatalf("Read after Release = %s %+v, want released by %s at epoch %d", st.State, st.Record, l.InstanceID(), l.Epoch())
	}
	if got := readPublished(t, path); got.TTL != 0 || got.InstanceID != l.InstanceID() {
		t.Fatalf("published after Release: %+v, want TTL 0 from the last holder", got)
	}
	// Free at once, long before the TTL would have run out.
	next := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	wantHeldBy(t, path, clk, next)
}

func TestReleaseTwiceIsNoop(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, time.Minute, lease.WithClock(clk))
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	before := versions(t, path)
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v, want nil", err)
	}
	if got := versions(t, path); !slices.Equal(got, before) {
		t.Fatalf("second Release wrote: versions %v -> %v", before, got)
	}
	// Nor does it touch a new holder's lease.
	next := mustAcquireLease(t, path, time.Minute, lease.WithClock(clk))
	if err := l.Release(); err != nil {
		t.Fatalf("third Release: %v, want nil", err)
	}
	wantHeldBy(t, path, clk, next)
}

// TestStaleReleaseKeepsNewHolder: a holder that was taken over and then
// releases must not free the new holder's lease.
func TestStaleReleaseKeepsNewHolder(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	a := clockAt(0)
	stale := mustAcquireLease(t, path, ttl, lease.WithClock(a))
	b := clockAt(ttl + time.Second)
	taker := mustAcquireLease(t, path, ttl, lease.WithClock(b))

	if err := stale.Release(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("stale Release: %v, want ErrLost", err)
	}
	wantHeldBy(t, path, b, taker)
	if got := readPublished(t, path); got.InstanceID != taker.InstanceID() || got.TTL == 0 {
		t.Fatalf("published after a stale Release: %+v, want the taker's held record", got)
	}
	if _, err := lease.Acquire(path, ttl, lease.WithClock(b)); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire after a stale Release: %v, want ErrHeld", err)
	}
	if err := taker.Renew(); err != nil {
		t.Fatalf("taker's Renew after a stale Release: %v", err)
	}
	if err := stale.Release(); err != nil {
		t.Fatalf("stale Release again: %v, want nil (no-op)", err)
	}
	wantHeldBy(t, path, b, taker)
}

// TestStaleReleaseAfterManyRenewals: the same, once the taker's versions
// have moved far past the stale one's (and cleanup removed the name the
// stale holder writes next).
func TestStaleReleaseAfterManyRenewals(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	a := clockAt(0)
	stale := mustAcquireLease(t, path, ttl, lease.WithClock(a))
	b := clockAt(ttl)
	taker := mustAcquireLease(t, path, ttl, lease.WithClock(b))
	for range 40 {
		b.Advance(time.Second)
		if err := taker.Renew(); err != nil {
			t.Fatal(err)
		}
	}
	if err := stale.Release(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("stale Release: %v, want ErrLost", err)
	}
	wantHeldBy(t, path, b, taker)
	if err := taker.Renew(); err != nil {
		t.Fatalf("taker's Renew: %v", err)
	}
}

// TestReleaseRetryAfterIOError: Release documents that a Release whose write
// failed with an I/O error may be retried. Nobody took over in between, so
// the retry must not say ErrLost ("taken over by another instance").
func TestReleaseRetryAfterIOError(t *testing.T) {
	const ttl = time.Hour
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o777); err != nil { // the publishing rename fails
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	err := l.Release()
	if err == nil || errors.Is(err, lease.ErrLost) {
		t.Fatalf("Release with a directory at PATH: %v, want an I/O error", err)
	}
	if !l.Expired() {
		t.Fatal("not Expired after Release, even a failed one")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := l.Release(); err != nil {
		t.Errorf("Release retried: %v, want nil", err)
	}
	if st := mustReadStatus(t, path, lease.WithClock(clk)); st.State != lease.StateReleased {
		t.Fatalf("Read after the retried Release = %s, want released", st.State)
	}
	if got := readPublished(t, path); !got.Released() {
		t.Errorf("published copy after the retried Release still held: %+v", got)
	}
}

// TestReleaseErrorsSayReleasing: a Release that fails with an I/O error
// says that releasing failed, also when what failed is its look at whether
// an earlier renewal, whose write failed, made its version after all.
func TestReleaseErrorsSayReleasing(t *testing.T) {
	path := leasePathIn(t)
	l := mustAcquireLease(t, path, time.Hour)
	// A file where the temp directory belongs: every write fails.
	tmp := filepath.Join(path+".d", "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(); err == nil {
		t.Fatal("Renew succeeded with a file where the temp directory belongs")
	}
	// And a file where the version directory belongs: reads fail too.
	if err := os.Rename(path+".d", path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".d", nil, 0o666); err != nil {
		t.Fatal(err)
	}
	wantReleasing := func(what string) {
		t.Helper()
		err := l.Release()
		if err == nil || errors.Is(err, lease.ErrLost) {
			t.Fatalf("%s: Release: %v, want an I/O error", what, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "releasing "+path) || strings.Contains(msg, "renew") {
			t.Errorf("%s: Release: %q, want it to say that releasing %s failed", what, msg, path)
		}
	}
	wantReleasing("the look at the failed renewal failed")
	// Once the look succeeds, the write of the release fails.
	if err := os.Remove(path + ".d"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".old", path+".d"); err != nil {
		t.Fatal(err)
	}
	wantReleasing("the write failed")
}
