package lease_test

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/lease"
)

// removedOrReplaced is what a holder's ErrLost says when the lease's files
// were removed or replaced under it.
const removedOrReplaced = "removed or replaced by hand"

// wantRemovedError checks that err is ErrLost saying that the lease's files
// were removed or replaced, and that the handle stopped holding.
func wantRemovedError(t *testing.T, what string, l *lease.Lease, err error) {
	t.Helper()
	if !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), removedOrReplaced) {
		t.Fatalf("%s: %v; want ErrLost saying the files were %s", what, err, removedOrReplaced)
	}
	if !l.Expired() {
		t.Fatalf("%s: the handle is not Expired", what)
	}
}

// heldAt acquires the lease at path and renews it to version 4, so that
// its version numbers differ from those of an acquisition started anew.
func heldAt(t *testing.T, path string, ttl time.Duration, clk *fakeclock.Clock) *lease.Lease {
	t.Helper()
	h := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	for range 3 {
		clk.Advance(time.Second)
		if err := h.Renew(); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// A holder whose lease's files are deleted by hand ("rm -rf PATH PATH.d")
// learns it at its next renewal: ErrLost, saying so, which Err then
// returns too. It writes nothing: it does not make PATH.d again, and its
// Release frees nothing.
func TestRenewAfterFilesRemoved(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	h := heldAt(t, path, ttl, clk)

	for _, p := range []string{path, path + ".d"} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	if err := h.Err(); err != nil {
		t.Fatalf("Err before Renew found the loss: %v", err)
	}
	err := h.Renew()
	wantRemovedError(t, "Renew after the files were removed", h, err)
	if h.Err() != err {
		t.Fatalf("Err after Renew returned %v: %v; want the same error, for a watchdog that sees Expired", err, h.Err())
	}
	if err := h.Release(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Release after the files were removed: %v; want ErrLost", err)
	}
	for _, p := range []string{path, path + ".d"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s after the lapsed holder's Renew and Release: %v; want it still gone", p, err)
		}
	}
}

// After a reset by hand, an acquisition starts anew at version 1 (epoch 1,
// PATH being gone too) while the old holder still runs. The old holder's
// next write, whether a renewal or a release, must end its holding, say
// why, and leave the new holder's lease as it was: a released record from
// the old holder would free it.
func TestWriteAfterResetUnderHolder(t *testing.T) {
	const ttl = 10 * time.Second
	for _, write := range []string{"renew", "release"} {
		t.Run(write, func(t *testing.T) {
			path := leasePathIn(t)
			clk := clockAt(0)
			h := heldAt(t, path, ttl, clk)
			for _, p := range []string{path, path + ".d"} {
				if err := os.RemoveAll(p); err != nil {
					t.Fatal(err)
				}
			}
			c := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
			if c.Epoch() != 1 {
				t.Fatalf("the acquisition after the reset has epoch %d, want 1", c.Epoch())
			}
			clk.Advance(time.Second)
			if write == "renew" {
				wantRemovedError(t, "the old holder's Renew", h, h.Renew())
			} else {
				wantRemovedError(t, "the old holder's Release", h, h.Release())
			}
			if vs := versions(t, path); !slices.Equal(vs, []uint64{1}) {
				t.Fatalf("versions %v after the old holder's %s; want the new holder's 1 alone", vs, write)
			}
			wantHeldBy(t, path, clk, c)
			if err := c.Renew(); err != nil {
				t.Fatalf("the new holder's Renew: %v", err)
			}
			wantHeldBy(t, path, clk, c)
		})
	}
}

// The new acquisition may already have gone past the old holder's next
// version: the old holder's renewal then loses its link, and ErrLost says
// that the files were replaced (the record above it has no higher epoch, as
// a takeover's would).
func TestRenewAfterResetWentPast(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	h := heldAt(t, path, ttl, clk)
	for _, p := range []string{path, path + ".d"} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	c := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	for newestVersion(t, path) < 6 {
		clk.Advance(time.Millisecond)
		if err := c.Renew(); err != nil {
			t.Fatal(err)
		}
	}
	err := h.Renew()
	wantRemovedError(t, "the old holder's Renew", h, err)
	if !strings.Contains(err.Error(), c.InstanceID()) {
		t.Fatalf("the old holder's Renew: %v; want it to name the new holder %s", err, c.InstanceID())
	}
	wantHeldBy(t, path, clk, c)
}

// PATH.d alone removed by hand (PATH left) while a holder runs: the holder
// loses at its next renewal; Read finds the lease free, as Acquire would,
// and says that the versions were removed; the next acquisition still
// takes a higher epoch, from PATH.
func TestVersionDirRemovedUnderHolder(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	h := heldAt(t, path, ttl, clk)
	if err := os.RemoveAll(path + ".d"); err != nil {
		t.Fatal(err)
	}
	st := mustReadStatus(t, path, lease.WithClock(clk))
	if st.State != lease.StateFree || !st.VersionsRemoved || st.Published == nil || st.Published.InstanceID != h.InstanceID() {
		t.Fatalf("Read with PATH.d removed: %s, versions removed %v, published %+v; want free, true, %s's record",
			st.State, st.VersionsRemoved, st.Published, h.InstanceID())
	}
	clk.Advance(time.Second)
	wantRemovedError(t, "Renew after PATH.d was removed", h, h.Renew())
	if _, err := os.Lstat(path + ".d"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("PATH.d after the holder's Renew: %v; want it still gone", err)
	}
	c := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	if c.Epoch() != h.Epoch()+1 {
		t.Fatalf("epoch %d after %d", c.Epoch(), h.Epoch())
	}
	st = mustReadStatus(t, path, lease.WithClock(clk))
	if st.State != lease.StateHeld || st.VersionsRemoved || st.Published != nil {
		t.Fatalf("Read after the new acquisition: %s, versions removed %v, published %+v; want held, false, nil",
			st.State, st.VersionsRemoved, st.Published)
	}
}
