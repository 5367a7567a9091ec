package lease_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/leaserun/leaserun/lease"
)

// TestNoGoroutineLeft checks that no call leaves a goroutine behind: Wait
// starts a file watcher and must stop it on every way out.
func TestNoGoroutineLeft(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease")

	l, err := lease.Acquire(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)

	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)

	if _, err := lease.Read(path); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)

	// A Wait that times out while the lease is held.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = lease.Wait(ctx, path, time.Hour)
	cancel()
	if !errors.Is(err, lease.ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a held lease: %v, want ErrHeld and DeadlineExceeded", err)
	}
	goleak.VerifyNone(t)

	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)

	// A Wait that succeeds at once (the lease is released)...
	w, err := lease.Wait(context.Background(), path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)

	// ...and one that succeeds after waiting, woken when the holder releases.
	done := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		done <- w.Release()
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	w2, err := lease.Wait(ctx, path, time.Hour)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w2.Release(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)
}
