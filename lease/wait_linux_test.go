//go:build linux

package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// TestWaitWokenByNotification: on Linux the waiter watches the version
// directory, so a Release wakes it although its clock never moves and its
// poll interval is an hour. The bound is on a hang, not a timing.
func TestWaitWokenByNotification(t *testing.T) {
	path := leasePathIn(t)
	a := clockAt(0)
	holder := mustAcquireLease(t, path, time.Minute, lease.WithClock(a))
	clk := clockAt(0)
	w := startWait(t, context.Background(), path, time.Minute, lease.WithClock(clk), lease.WithPollInterval(time.Hour))
	bound, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := clk.BlockUntil(bound, 1); err != nil {
		t.Fatal("Wait did not wait on its clock")
	}
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-w.res:
		if r.err != nil {
			t.Fatalf("Wait: %v", r.err)
		}
		if !tookAt(r.l).Equal(clk.Now()) {
			t.Fatalf("took at %v, want %v (the clock never moved)", tookAt(r.l), clk.Now())
		}
		wantHeldBy(t, path, clk, r.l)
	case <-bound.Done():
		t.Fatal("a Release did not wake Wait within a minute")
	}
}
