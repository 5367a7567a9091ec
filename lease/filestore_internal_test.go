package lease

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	s := newFileStore(path)
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
	out, err := s.put(low, encodeRecord(&stale), true, false)
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
	taken, err := take(s, Value{Rev: rev(oldView.seq)}, oldView.rec, ttl, &o)
	if err != nil || taken != nil {
		t.Fatalf("stale take after version %d: %v, %v; want nil, nil", oldView.seq, taken, err)
	}
	wantUntouched("a stale take")

	// Names still in place: the link itself fails.
	for _, n := range []uint64{newest - 1, newest} {
		if out, err := s.put(n, encodeRecord(&stale), false, false); err != nil || out != lost {
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
	s := newFileStore(path)
	if err := os.Remove(s.versionPath(1)); err != nil {
		t.Fatal(err)
	}
	rec := l.Record()
	rec.InstanceID = "stale"
	if out, err := s.put(1, encodeRecord(&rec), false, false); err != nil || out != superseded {
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

// setHooks installs test hooks for one test.
func setHooks(t *testing.T, link, list func()) {
	t.Helper()
	testHookLink, testHookList = link, list
	t.Cleanup(func() { testHookLink, testHookList = nil, nil })
}

// A renewal that began in time but whose link happened after the deadline
// (the holder froze in between) may reuse a name: a challenger took over
// meanwhile and went so far that cleanup removed the name the renewal
// links. The listing after the link finds the challenger's versions and the
// renewal is lost. Here version s is back as a stray (a stale writer can
// recreate it), so only the listing stands between the renewal and a false
// win that would publish its record over the challenger's.
func TestRenewalLinkedAfterDeadlineLists(t *testing.T) {
	const ttl = 10 * time.Second
	path := filepath.Join(t.TempDir(), "lease")
	clk := fakeclock.New(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	h, err := Acquire(path, ttl, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := h.Renew(); err != nil { // version 2
		t.Fatal(err)
	}
	s := newFileStore(path)
	prev := h.version()
	prevBytes, err := os.ReadFile(s.versionPath(prev))
	if err != nil {
		t.Fatal(err)
	}

	var taker *Lease
	froze := false
	setHooks(t, func() {
		if froze {
			return
		}
		froze = true
		// The holder wrote its temp file and froze before linking, for
		// longer than its TTL; a challenger took the lease over and renewed
		// past two cleanups.
		clk.Advance(2 * ttl)
		var err error
		if taker, err = Acquire(path, ttl, WithClock(clk)); err != nil {
			t.Fatalf("challenger's Acquire: %v", err)
		}
		for taker.version() < 2*cleanupEvery {
			clk.Advance(time.Second)
			if err := taker.Renew(); err != nil {
				t.Fatalf("challenger's Renew: %v", err)
			}
		}
		if s.exists(prev+1) || s.exists(prev) {
			t.Fatalf("versions %d and %d not cleaned up; the test needs them gone", prev, prev+1)
		}
		if err := os.WriteFile(s.versionPath(prev), prevBytes, 0o444); err != nil {
			t.Fatal(err)
		}
	}, nil)

	err = h.Renew()
	if !froze {
		t.Fatal("the renewal did not link")
	}
	if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), taker.InstanceID()) {
		t.Fatalf("Renew linked after its deadline: %v; want ErrLost naming the challenger %s", err, taker.InstanceID())
	}
	if !h.Expired() {
		t.Fatal("the holder is not Expired after losing")
	}
	published, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := decodeRecord(published); err != nil || rec.InstanceID != taker.InstanceID() {
		t.Fatalf("published record %s, want the challenger's (%s)", published, taker.InstanceID())
	}
	v, err := s.read()
	if err != nil || v.seq != taker.version() || v.rec == nil || v.rec.InstanceID != taker.InstanceID() {
		t.Fatalf("newest version %d %+v, %v; want %d held by the challenger", v.seq, v.rec, err, taker.version())
	}
	if err := taker.Renew(); err != nil {
		t.Fatalf("challenger's Renew after the stale renewal: %v", err)
	}
}

// parseDecimal accepts exactly the canonical decimals from 1 to
// math.MaxUint64, as strconv does.
func TestParseDecimal(t *testing.T) {
	ref := func(name string) (uint64, bool) {
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil || n == 0 || strconv.FormatUint(n, 10) != name {
			return 0, false
		}
		return n, true
	}
	names := []string{"", "0", "00", "01", "1", "9", "10", "+1", "-1", "1a", " 1", "1 ", "1_0", "0x1",
		"18446744073709551615", "18446744073709551616", "99999999999999999999", "184467440737095516150",
		"tmp", "tmp-1", "\x001"}
	for i := range 2000 {
		names = append(names, strconv.Itoa(i), strconv.FormatUint(math.MaxUint64-uint64(i), 10))
	}
	for _, name := range names {
		n, ok := parseDecimal(name)
		m, ok2 := parseDecimal([]byte(name))
		wn, wok := ref(name)
		if n != wn || ok != wok || m != wn || ok2 != wok {
			t.Errorf("parseDecimal(%q) = %d %v (bytes: %d %v), want %d %v", name, n, ok, m, ok2, wn, wok)
		}
	}
}

// Temp files left by crashes go once they are old, at the versions where
// cleanup looks for them; fresh ones (a write in progress) stay.
func TestCleanupRemovesStaleTemps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease")
	clk := fakeclock.New(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	l, err := Acquire(path, time.Hour, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	s := newFileStore(path)
	old := time.Now().Add(-2 * staleTempAge)
	var stale, fresh []string
	for _, p := range []string{filepath.Join(s.tmp, "crashed")} {
		if err := os.WriteFile(p, nil, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		stale = append(stale, p)
	}
	for _, p := range []string{filepath.Join(s.tmp, "in-progress")} {
		if err := os.WriteFile(p, nil, 0o444); err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, p)
	}
	gone := func(p string) bool {
		_, err := os.Lstat(p)
		return errors.Is(err, fs.ErrNotExist)
	}
	for l.version() < tempScanEvery {
		clk.Advance(time.Second)
		if err := l.Renew(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range stale {
		if !gone(p) {
			t.Errorf("stale temp file %s left after version %d", p, l.version())
		}
	}
	for _, p := range fresh {
		if gone(p) {
			t.Errorf("fresh temp file %s removed", p)
		}
	}
}
