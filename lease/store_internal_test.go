package lease

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
)

// TestStaleWriterReusingRemovedVersionLoses: a writer that read the lease
// long ago (a stale NFS read, a process frozen mid-write) and now creates the
// version after the one it read, whose name cleanup has removed meanwhile,
// must lose: the exclusive link succeeds, but a higher version stands
// beside it.
func TestStaleWriterReusingRemovedVersionLoses(t *testing.T) {
	const ttl = time.Hour
	path := filepath.Join(t.TempDir(), "lease")
	clk := fakeclock.New(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	l, err := Acquire(path, ttl, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	oldView := view{seq: 1, rec: new(l.Record())} // what a stale challenger read
	for range 2*cleanupEvery + 3 {
		clk.Advance(time.Second)
		if err := l.Renew(); err != nil {
			t.Fatal(err)
		}
	}
	s := newStore(path)
	v, err := s.read()
	if err != nil {
		t.Fatal(err)
	}
	newest := v.seq
	const low = 3
	if _, err := os.Stat(s.versionPath(low)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("version %d was not cleaned up (stat: %v); the test needs it gone", low, err)
	}
	published, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	wantUntouched := func(what string) {
		t.Helper()
		v, err := s.read()
		if err != nil {
			t.Fatal(err)
		}
		if v.seq != newest || v.rec == nil || v.rec.InstanceID != l.InstanceID() {
			t.Fatalf("after %s: newest version %d %+v, want %d held by %s", what, v.seq, v.rec, newest, l.InstanceID())
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, published) {
			t.Fatalf("after %s: the published record changed to %s", what, now)
		}
		st, err := Read(path, WithClock(clk))
		if err != nil || st.State != StateHeld || st.Record.InstanceID != l.InstanceID() {
			t.Fatalf("after %s: Read = %s %+v, %v; want held by %s", what, st.State, st.Record, err, l.InstanceID())
		}
	}

	// A stale acquisition written straight at a removed low version.
	stale := Record{
		InstanceID: "stale-writer", PID: 1, Host: "elsewhere",
		AcquiredAt: clk.Now(), RenewedAt: clk.Now(), TTL: ttl, Epoch: 2,
	}
	out, err := s.put(low, &stale, true)
	if err != nil || out != lost {
		t.Fatalf("stale put of removed version %d: outcome %v, %v; want lost", low, out, err)
	}
	wantUntouched("a stale put of a removed version")

	// The same through take, as a challenger that judged the version it
	// read long ago expired.
	cleanupVictim := oldView.seq + 1 // removed by cleanup long ago
	if _, err := os.Stat(s.versionPath(cleanupVictim)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("version %d was not cleaned up (stat: %v)", cleanupVictim, err)
	}
	o := buildOptions([]Option{WithClock(clk)})
	taken, err := take(s, oldView, ttl, &o)
	if err != nil || taken != nil {
		t.Fatalf("stale take after version %d: %v, %v; want nil, nil", oldView.seq, taken, err)
	}
	wantUntouched("a stale take")

	// Names still in place: the link itself fails.
	for _, n := range []uint64{newest - 1, newest} {
		if out, err := s.put(n, &stale, false); err != nil || out != lost {
			t.Fatalf("stale put of existing version %d: outcome %v, %v; want lost", n, out, err)
		}
	}
	wantUntouched("stale puts of existing versions")

	// The holder is unaffected, and the recreated low versions go at the
	// next cleanups.
	for range cleanupEvery {
		clk.Advance(time.Second)
		if err := l.Renew(); err != nil {
			t.Fatalf("holder's Renew after stale writes: %v", err)
		}
	}
	for _, n := range []uint64{low, cleanupVictim} {
		if _, err := os.Stat(s.versionPath(n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("recreated version %d not cleaned up: %v", n, err)
		}
	}
}

// TestPutRefusesWhenNewerExists: a put whose name is free but lies below the
// newest version loses, even right below it.
func TestPutRefusesWhenNewerExists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease")
	clk := fakeclock.New(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	l, err := Acquire(path, time.Hour, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err != nil { // versions 1, 2
		t.Fatal(err)
	}
	s := newStore(path)
	if err := os.Remove(s.versionPath(1)); err != nil {
		t.Fatal(err)
	}
	rec := l.Record()
	rec.InstanceID = "stale"
	if out, err := s.put(1, &rec, false); err != nil || out != superseded {
		t.Fatalf("put of version 1 below version 2: outcome %v, %v; want superseded", out, err)
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err != nil {
		t.Fatalf("holder's Renew: %v", err)
	}
}

// While the machine is suspended the monotonic clock stands still but
// others judge the record by wall clock: the holder must count itself
// expired once the record's wall-clock expiry has passed, whatever its
// monotonic deadline says.
func TestExpiredByWallClockAfterSuspend(t *testing.T) {
	clk := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := Acquire(filepath.Join(t.TempDir(), "l"), time.Second, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	// Stand in for a monotonic deadline that did not move during a suspend.
	far := clk.Now().Add(time.Hour)
	l.deadline.Store(&far)
	if l.Expired() {
		t.Fatal("expired before the record's wall-clock expiry")
	}
	clk.Advance(time.Second)
	if !l.Expired() {
		t.Fatal("not expired once the record's wall-clock expiry passed")
	}
}

// ESTALE from a network filesystem means a name was replaced on the server
// since it was looked up: the operation is tried again, a bounded number
// of times.
func TestRetryStale(t *testing.T) {
	calls := 0
	got, err := retryStale(func() (int, error) {
		calls++
		if calls < 3 {
			return 0, &fs.PathError{Op: "stat", Path: "PATH", Err: syscall.ESTALE}
		}
		return 7, nil
	})
	if got != 7 || err != nil || calls != 3 {
		t.Fatalf("retryStale = %d, %v after %d calls; want 7, nil after 3", got, err, calls)
	}
	calls = 0
	_, err = retryStale(func() (int, error) {
		calls++
		return 0, syscall.ESTALE
	})
	if !errors.Is(err, syscall.ESTALE) || calls != staleTries {
		t.Fatalf("always stale: %v after %d calls; want ESTALE after %d", err, calls, staleTries)
	}
}
