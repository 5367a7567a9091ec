package lease_test

// Shared helpers of the package's unit tests, and the tests that cut across
// operations: the record's on-disk shape, epochs, and concurrent use of a
// handle. Every test drives time with a fakeclock, so none sleeps.

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/lease"
)

// epoch0 is where the fake clocks of these tests start.
var epoch0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// clockAt returns a fake clock reading epoch0+d.
func clockAt(d time.Duration) *fakeclock.Clock { return fakeclock.New(epoch0.Add(d)) }

// leasePathIn returns a lease path in a fresh temporary directory.
func leasePathIn(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "lease")
}

// mustAcquireLease acquires the lease at path or fails the test.
func mustAcquireLease(t *testing.T, path string, ttl time.Duration, opts ...lease.Option) *lease.Lease {
	t.Helper()
	l, err := lease.Acquire(path, ttl, opts...)
	if err != nil {
		t.Fatalf("Acquire(%s): %v", path, err)
	}
	return l
}

// mustReadStatus reads the lease at path or fails the test.
func mustReadStatus(t *testing.T, path string, opts ...lease.Option) lease.Status {
	t.Helper()
	st, err := lease.Read(path, opts...)
	if err != nil {
		t.Fatalf("Read(%s): %v", path, err)
	}
	return st
}

// wantHeldBy checks that Read, on clk, finds the lease held by l.
func wantHeldBy(t *testing.T, path string, clk lease.Clock, l *lease.Lease) {
	t.Helper()
	st := mustReadStatus(t, path, lease.WithClock(clk))
	if st.State != lease.StateHeld || st.Record == nil || st.Record.InstanceID != l.InstanceID() {
		t.Fatalf("Read = %s %+v, want held by %s", st.State, st.Record, l.InstanceID())
	}
}

// versions lists the version numbers in path's version directory, sorted.
func versions(t *testing.T, path string) []uint64 {
	t.Helper()
	entries, err := os.ReadDir(path + ".d")
	if err != nil {
		t.Fatal(err)
	}
	var vs []uint64
	for _, e := range entries {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && strconv.FormatUint(n, 10) == e.Name() && n > 0 {
			vs = append(vs, n)
		}
	}
	slices.Sort(vs)
	return vs
}

// newestVersion is the highest version number in path's version directory.
func newestVersion(t *testing.T, path string) uint64 {
	t.Helper()
	vs := versions(t, path)
	if len(vs) == 0 {
		t.Fatalf("%s.d holds no version", path)
	}
	return vs[len(vs)-1]
}

// writeVersion writes data as version n of the lease at path, as a writer
// that does not follow the protocol (or a disk that lost data) would.
func writeVersion(t *testing.T, path string, n uint64, data []byte) {
	t.Helper()
	if err := os.MkdirAll(path+".d", 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path+".d", strconv.FormatUint(n, 10)), data, 0o666); err != nil {
		t.Fatal(err)
	}
}

// readPublished decodes the published copy at path.
func readPublished(t *testing.T, path string) lease.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r lease.Record
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("published record %q: %v", data, err)
	}
	return r
}

func TestRecordJSONShape(t *testing.T) {
	for _, meta := range []map[string]string{nil, {"endpoint": "10.0.0.7:8080"}} {
		path := leasePathIn(t)
		clk := clockAt(0)
		opts := []lease.Option{lease.WithClock(clk)}
		if meta != nil {
			opts = append(opts, lease.WithMeta(meta))
		}
		l := mustAcquireLease(t, path, 90*time.Second, opts...)

		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatalf("published record %q is not a JSON object: %v", data, err)
		}
		want := []string{"acquired_at", "epoch", "host", "instance_id", "pid", "renewed_at", "ttl"}
		if meta != nil {
			want = append(want, "meta")
		}
		slices.Sort(want)
		if got := slices.Sorted(maps.Keys(raw)); !slices.Equal(got, want) {
			t.Fatalf("published record has keys %v, want %v (%s)", got, want, data)
		}

		var ttl int64
		if err := json.Unmarshal(raw["ttl"], &ttl); err != nil || ttl != int64(90*time.Second) {
			t.Errorf("ttl = %s, want %d (nanoseconds)", raw["ttl"], int64(90*time.Second))
		}
		var id string
		if err := json.Unmarshal(raw["instance_id"], &id); err != nil || id != l.InstanceID() {
			t.Errorf("instance_id = %s, want %q", raw["instance_id"], l.InstanceID())
		}
		var pid int
		if err := json.Unmarshal(raw["pid"], &pid); err != nil || pid != os.Getpid() {
			t.Errorf("pid = %s, want %d", raw["pid"], os.Getpid())
		}
		host, _ := os.Hostname()
		var gotHost string
		if err := json.Unmarshal(raw["host"], &gotHost); err != nil || gotHost != host {
			t.Errorf("host = %s, want %q", raw["host"], host)
		}
		for _, k := range []string{"acquired_at", "renewed_at"} {
			var s string
			if err := json.Unmarshal(raw[k], &s); err != nil {
				t.Errorf("%s = %s, not a string", k, raw[k])
				continue
			}
			tm, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || !tm.Equal(epoch0) {
				t.Errorf("%s = %q, want RFC 3339 for %v", k, s, epoch0)
			}
		}
		var epoch uint64
		if err := json.Unmarshal(raw["epoch"], &epoch); err != nil || epoch != 1 {
			t.Errorf("epoch = %s, want 1", raw["epoch"])
		}
		if meta != nil {
			var m map[string]string
			if err := json.Unmarshal(raw["meta"], &m); err != nil || !maps.Equal(m, meta) {
				t.Errorf("meta = %s, want %v", raw["meta"], meta)
			}
		}

		// The published copy is the newest version's record, byte for byte.
		head, err := os.ReadFile(filepath.Join(path+".d", strconv.FormatUint(newestVersion(t, path), 10)))
		if err != nil {
			t.Fatal(err)
		}
		if string(head) != string(data) {
			t.Errorf("published %q differs from the newest version %q", data, head)
		}
	}
}

func TestRecordFieldsOfHandle(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, time.Minute, lease.WithClock(clk))
	r := l.Record()
	host, _ := os.Hostname()
	switch {
	case r.InstanceID != l.InstanceID():
		t.Errorf("Record().InstanceID = %q, InstanceID() = %q", r.InstanceID, l.InstanceID())
	case r.PID != os.Getpid() || r.Host != host:
		t.Errorf("Record() pid %d host %q, want %d %q", r.PID, r.Host, os.Getpid(), host)
	case !r.AcquiredAt.Equal(epoch0) || !r.RenewedAt.Equal(epoch0):
		t.Errorf("Record() acquired %v renewed %v, want both %v", r.AcquiredAt, r.RenewedAt, epoch0)
	case r.TTL != time.Minute || l.TTL() != time.Minute:
		t.Errorf("Record().TTL = %v, TTL() = %v, want 1m", r.TTL, l.TTL())
	case r.Epoch != 1 || l.Epoch() != 1:
		t.Errorf("Record().Epoch = %d, Epoch() = %d, want 1", r.Epoch, l.Epoch())
	case r.Released():
		t.Errorf("a fresh record says it is released")
	case !r.ExpiresAt().Equal(epoch0.Add(time.Minute)):
		t.Errorf("ExpiresAt = %v, want %v", r.ExpiresAt(), epoch0.Add(time.Minute))
	case l.Path() != path:
		t.Errorf("Path() = %q, want %q", l.Path(), path)
	}
	if got := readPublished(t, path); got.InstanceID != r.InstanceID || got.Epoch != r.Epoch || !got.RenewedAt.Equal(r.RenewedAt) {
		t.Errorf("published %+v, handle's %+v", got, r)
	}
}

func TestEpochStrictlyIncreases(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	var last uint64
	next := func(what string, l *lease.Lease) {
		t.Helper()
		if l.Epoch() <= last {
			t.Fatalf("%s: epoch %d, not above the previous %d", what, l.Epoch(), last)
		}
		if got := l.Record().Epoch; got != l.Epoch() {
			t.Fatalf("%s: Record().Epoch %d != Epoch() %d", what, got, l.Epoch())
		}
		last = l.Epoch()
	}

	a := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(a))
	next("first acquisition", l)
	a.Advance(ttl / 2)
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if l.Epoch() != last {
		t.Fatalf("Renew changed the epoch from %d to %d", last, l.Epoch())
	}

	// Takeover of an expired lease.
	b := clockAt(ttl/2 + ttl)
	l = mustAcquireLease(t, path, ttl, lease.WithClock(b))
	next("takeover", l)

	// The holder's own expiry: Renew gives the lease up.
	b.Advance(ttl)
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew after expiry: %v, want ErrLost", err)
	}
	l = mustAcquireLease(t, path, ttl, lease.WithClock(b))
	next("acquisition after expiry", l)

	// Release.
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l = mustAcquireLease(t, path, ttl, lease.WithClock(b))
	next("acquisition after release", l)

	// Wait.
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lease.Wait(ctx, path, ttl, lease.WithClock(b))
	if err != nil {
		t.Fatal(err)
	}
	next("Wait", l)
	if st := mustReadStatus(t, path, lease.WithClock(b)); st.Record == nil || st.Record.Epoch != last {
		t.Fatalf("Read = %+v, want epoch %d", st.Record, last)
	}

	// Deleting PATH.d alone keeps epochs going up: they continue from PATH.
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(path + ".d"); err != nil {
		t.Fatal(err)
	}
	l = mustAcquireLease(t, path, ttl, lease.WithClock(b))
	next("acquisition after deleting PATH.d", l)

	// Deleting both resets them.
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(path + ".d"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l = mustAcquireLease(t, path, ttl, lease.WithClock(b))
	if l.Epoch() != 1 {
		t.Fatalf("epoch after deleting PATH and PATH.d = %d, want 1", l.Epoch())
	}
}

// TestEpochAfterVersionDirDeletedThenUnreadableHead: once PATH.d was deleted
// and epochs continued from PATH, an epoch can exceed its version number.
// A newest version that is then unreadable (as a power loss can leave a
// renewal that was never synced) must still not lower the epoch.
func TestEpochAfterVersionDirDeletedThenUnreadableHead(t *testing.T) {
	const ttl = time.Minute
	path := leasePathIn(t)
	clk := clockAt(0)
	for range 5 {
		if err := mustAcquireLease(t, path, ttl, lease.WithClock(clk)).Release(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(path + ".d"); err != nil {
		t.Fatal(err)
	}
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	high := l.Epoch()
	if high <= 5 {
		t.Fatalf("epoch after deleting PATH.d = %d, want above 5", high)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	writeVersion(t, path, newestVersion(t, path)+1, nil) // an empty, unreadable head
	l = mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	if l.Epoch() <= high {
		t.Fatalf("epoch went back from %d to %d", high, l.Epoch())
	}
}

func TestInstanceIDFreshPerAcquisition(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)
	seen := map[string]bool{}
	check := func(l *lease.Lease) {
		t.Helper()
		id := l.InstanceID()
		if !isUUIDv4(id) {
			t.Fatalf("InstanceID %q is not a random (version 4) UUID", id)
		}
		if seen[id] {
			t.Fatalf("InstanceID %q reused", id)
		}
		seen[id] = true
	}
	for range 5 {
		l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
		check(l)
		id := l.InstanceID()
		clk.Advance(time.Second)
		if err := l.Renew(); err != nil {
			t.Fatal(err)
		}
		if l.InstanceID() != id || l.Record().InstanceID != id {
			t.Fatalf("Renew changed InstanceID from %q to %q", id, l.InstanceID())
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
	// Takeovers too.
	for range 3 {
		check(mustAcquireLease(t, path, ttl, lease.WithClock(clk)))
		clk.Advance(ttl)
	}
}

// isUUIDv4 reports whether s is a canonical RFC 9562 version 4 UUID.
func isUUIDv4(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return s[14] == '4' && (s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b')
}

// TestHandleConcurrentUse is meant for -race: a watchdog reads the handle
// while renewers renew it.
func TestHandleConcurrentUse(t *testing.T) {
	const ttl = time.Hour
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk), lease.WithMeta(map[string]string{"k": "v"}))
	id, epoch := l.InstanceID(), l.Epoch()

	const renewers, renewals = 4, 25
	stop := make(chan struct{})
	var watchers, renewing sync.WaitGroup
	for range 4 {
		watchers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if l.Expired() {
					t.Error("Expired while being renewed well within the TTL")
					return
				}
				if d := l.Deadline(); d.Before(epoch0.Add(ttl)) {
					t.Errorf("Deadline %v went below the first one", d)
				}
				r := l.Record()
				r.Meta["k"] = "changed by a caller" // a copy: must not race or leak
				if r.InstanceID != id || l.InstanceID() != id || l.Epoch() != epoch || l.TTL() != ttl || l.Path() != path {
					t.Errorf("handle changed identity: %+v", r)
				}
			}
		})
	}
	for range renewers {
		renewing.Go(func() {
			for range renewals {
				clk.Advance(time.Millisecond)
				if err := l.Renew(); err != nil {
					t.Errorf("Renew: %v", err)
				}
			}
		})
	}
	renewing.Wait()
	close(stop)
	watchers.Wait()

	if got, want := newestVersion(t, path), uint64(1+renewers*renewals); got != want {
		t.Errorf("newest version %d, want %d (one per renewal)", got, want)
	}
	if got := l.Record().Meta["k"]; got != "v" {
		t.Errorf("Meta changed to %q through a copy", got)
	}
	if got, want := l.Deadline(), clk.Now().Add(ttl); !got.Equal(want) {
		t.Errorf("Deadline = %v, want %v", got, want)
	}
	wantHeldBy(t, path, clk, l)
}

// TestReleaseWhileRenewing: Renew and Release are serialised, so a Renew
// racing a Release either comes first and succeeds or comes after and says
// ErrReleased; it never says ErrLost (nobody took over).
func TestReleaseWhileRenewing(t *testing.T) {
	for round := range 50 {
		path := leasePathIn(t)
		clk := clockAt(0)
		l := mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 4*5)
		for range 4 {
			wg.Go(func() {
				<-start
				for range 5 {
					_ = l.Expired()
					if err := l.Renew(); err != nil && !errors.Is(err, lease.ErrReleased) {
						errs <- err
					}
				}
			})
		}
		wg.Go(func() {
			<-start
			if err := l.Release(); err != nil {
				errs <- err
			}
		})
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: Renew or Release racing Release: %v, want nil or ErrReleased", round, err)
		}
		if !l.Expired() {
			t.Fatal("not Expired after Release")
		}
		if st := mustReadStatus(t, path, lease.WithClock(clk)); st.State != lease.StateReleased {
			t.Fatalf("Read after Release = %s, want released", st.State)
		}
	}
}
