package lease

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
)

// staleOpens makes the next n opens of version files fail with ENOENT, as
// on a host whose client answers them from its cache of failed lookups
// (the files exist: a listing shows them and a later lookup finds them).
// n < 0 makes every open fail. It returns the count of opens made.
func staleOpens(t *testing.T, n int) *int {
	t.Helper()
	opens := 0
	testHookRead = func(name string) error {
		opens++
		if n < 0 || opens <= n {
			return &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
		}
		return nil
	}
	t.Cleanup(func() { testHookRead = nil })
	return &opens
}

// A live record that the reader's host fails to open for a moment, though
// its listing shows it, is a stale view: Acquire, Read and Wait look again
// and find the lease held. None of them may take it for free.
func TestStaleViewIsNotFree(t *testing.T) {
	const ttl = time.Hour
	path := filepath.Join(t.TempDir(), "lease")
	clk := fakeclock.New(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	h, err := Acquire(path, ttl, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := h.Renew(); err != nil {
		t.Fatal(err)
	}

	opens := staleOpens(t, 3)
	l, err := Acquire(path, ttl, WithClock(clk))
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), h.InstanceID()) {
		t.Fatalf("Acquire on a stale view: acquired %v, %v; want ErrHeld naming %s", l != nil, err, h.InstanceID())
	}
	if *opens != 4 {
		t.Fatalf("Acquire opened the newest version %d times, want 4 (3 stale, then the record)", *opens)
	}

	opens = staleOpens(t, 3)
	st, err := Read(path, WithClock(clk))
	if err != nil || st.State != StateHeld || st.Record.InstanceID != h.InstanceID() {
		t.Fatalf("Read on a stale view: %s %+v, %v; want held by %s", st.State, st.Record, err, h.InstanceID())
	}
	if *opens != 4 {
		t.Fatalf("Read opened the newest version %d times, want 4 (3 stale, then the record)", *opens)
	}

	opens = staleOpens(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	l, err = Wait(ctx, path, ttl, WithClock(clk))
	if l != nil || !errors.Is(err, ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a stale view: acquired %v, %v; want ErrHeld once its context ends", l != nil, err)
	}
	if *opens < 4 {
		t.Fatalf("Wait opened the newest version %d times, want it to look again after the 3 stale opens", *opens)
	}

	testHookRead = nil
	if err := h.Renew(); err != nil {
		t.Fatalf("holder's Renew after the stale reads: %v", err)
	}
	if v, err := newFileStore(path).read(); err != nil || v.seq != 3 || v.rec.InstanceID != h.InstanceID() {
		t.Fatalf("newest version %d %+v, %v; want 3, the holder's", v.seq, v.rec, err)
	}
}

// A stale view that never resolves is an error, not a free lease, and the
// reader does not spin on the server meanwhile; Wait's context ends it at
// once. A dangling symlink where a version belongs is an error at once.
func TestStaleViewThatLastsIsAnError(t *testing.T) {
	const ttl = time.Hour
	path := filepath.Join(t.TempDir(), "lease")
	clk := fakeclock.New(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	h, err := Acquire(path, ttl, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { staleViewTimeout = d }(staleViewTimeout)
	staleViewTimeout = 200 * time.Millisecond

	staleOpens(t, -1)
	lists := 0
	setHooks(t, nil, func() { lists++ })
	l, err := Acquire(path, ttl, WithClock(clk))
	if l != nil || !errors.Is(err, errStaleView) || errors.Is(err, ErrHeld) {
		t.Fatalf("Acquire on a lasting stale view: acquired %v, %v; want an error wrapping errStaleView", l != nil, err)
	}
	// Pauses of 1, 2, 4, ... 100ms: about ten listings in 200ms, where a
	// spin would make thousands.
	if lists > 30 {
		t.Errorf("Acquire listed the directory %d times in %v", lists, staleViewTimeout)
	}
	if _, err := Read(path, WithClock(clk)); !errors.Is(err, errStaleView) {
		t.Fatalf("Read on a lasting stale view: %v; want an error wrapping errStaleView", err)
	}

	staleViewTimeout = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begun := time.Now()
	l, err = Wait(ctx, path, ttl, WithClock(clk))
	if l != nil || !errors.Is(err, ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a lasting stale view: acquired %v, %v; want ErrHeld and DeadlineExceeded", l != nil, err)
	}
	if d := time.Since(begun); d > 10*time.Second { // a bound on a hang
		t.Fatalf("Wait returned %v after its context ended", d)
	}

	testHookRead = nil
	if v, err := newFileStore(path).read(); err != nil || v.seq != 1 || v.rec.InstanceID != h.InstanceID() {
		t.Fatalf("newest version %d %+v, %v; want 1, the holder's: nothing written", v.seq, v.rec, err)
	}

	// A dangling symlink at the newest version.
	if err := os.Symlink(filepath.Join(t.TempDir(), "nowhere"), newFileStore(path).versionPath(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path, WithClock(clk)); !errors.Is(err, errDanglingLink) {
		t.Fatalf("Read of a dangling symlink at the newest version: %v; want errDanglingLink", err)
	}
	if l, err := Acquire(path, ttl, WithClock(clk)); l != nil || !errors.Is(err, errDanglingLink) {
		t.Fatalf("Acquire over a dangling symlink at the newest version: acquired %v, %v; want errDanglingLink", l != nil, err)
	}
}
