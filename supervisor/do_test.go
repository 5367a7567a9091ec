//go:build linux

package supervisor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
)

func TestDoReturnsFnError(t *testing.T) {
	cfg := testConfig(t)
	boom := errors.New("boom")
	var held bool
	err := Do(context.Background(), cfg, func(ctx context.Context) error {
		st, err := lease.Read(cfg.Path)
		held = err == nil && st.State == lease.StateHeld
		return boom
	})
	if err != boom {
		t.Fatalf("Do = %v, want %v", err, boom)
	}
	if !held {
		t.Error("the lease was not held while fn ran")
	}
	if st, err := lease.Read(cfg.Path); err != nil || st.State != lease.StateReleased {
		t.Errorf("after Do the lease is %v (%v), want released", st.State, err)
	}
	if err := Do(context.Background(), cfg, func(context.Context) error { return nil }); err != nil {
		t.Errorf("Do = %v, want nil", err)
	}
}

func TestDoRenews(t *testing.T) {
	cfg := testConfig(t)
	// Renewals every 500ms have a whole second of slack each, even on a
	// loaded machine.
	cfg.TTL, cfg.RenewInterval, cfg.Grace, cfg.Margin = 2*time.Second, 500*time.Millisecond, 0, 100*time.Millisecond
	err := Do(context.Background(), cfg, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(cfg.TTL + cfg.TTL/4): // outlive the TTL while renewing
			return nil
		}
	})
	if err != nil {
		t.Fatalf("Do = %v", err)
	}
}

func TestDoHeld(t *testing.T) {
	cfg := testConfig(t)
	l, err := lease.Acquire(cfg.Path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	called := false
	err = Do(context.Background(), cfg, func(context.Context) error { called = true; return nil })
	if !errors.Is(err, lease.ErrHeld) || called {
		t.Fatalf("Do = %v, called %v; want held", err, called)
	}
}

func TestDoWaits(t *testing.T) {
	cfg := testConfig(t)
	l, err := lease.Acquire(cfg.Path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Wait = true
	done := make(chan error, 1)
	go func() { done <- Do(context.Background(), cfg, func(context.Context) error { return nil }) }()
	l.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Do = %v", err)
		}
	case <-time.After(patience):
		t.Fatal("Do did not take the released lease")
	}

	// A wait that times out.
	l, err = lease.Acquire(cfg.Path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	cfg.WaitTimeout = 50 * time.Millisecond
	err = Do(context.Background(), cfg, func(context.Context) error { return nil })
	if !errors.Is(err, lease.ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do = %v, want held after the wait timeout", err)
	}
}

// A takeover cancels fn's context with a *LostError at the next renewal.
func TestDoLost(t *testing.T) {
	cfg := testConfig(t)
	var thief *lease.Lease
	err := Do(context.Background(), cfg, func(ctx context.Context) error {
		thief = takeOver(t, cfg.Path)
		select {
		case <-ctx.Done():
			var lost *LostError
			if !errors.As(context.Cause(ctx), &lost) {
				t.Errorf("cause %v, want a *LostError", context.Cause(ctx))
			}
			return ctx.Err()
		case <-time.After(patience):
			return errors.New("not cancelled")
		}
	})
	defer thief.Release()
	var lost *LostError
	if !errors.Is(err, lease.ErrLost) || !errors.As(err, &lost) || errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want only the loss", err)
	}
	if st, err := lease.Read(cfg.Path); err != nil || st.Record.InstanceID != thief.InstanceID() {
		t.Errorf("Do's release touched the new holder's lease: %+v, %v", st, err)
	}
}

// With renewals hung, fn's context ends at the stop point, before the lease
// can lapse, and fn's own error is returned along with the loss.
func TestDoStopsWhenRenewalHangs(t *testing.T) {
	cfg := roomyGuard(t)
	hangRenewals(t, &cfg)
	mine := errors.New("mine")
	before := time.Now()
	var cancelled time.Time
	err := Do(context.Background(), cfg, func(ctx context.Context) error {
		<-ctx.Done()
		cancelled = time.Now()
		return mine
	})
	if !errors.Is(err, lease.ErrLost) || !errors.Is(err, mine) {
		t.Fatalf("Do = %v, want the loss and fn's error", err)
	}
	st, rerr := lease.Read(cfg.Path)
	if rerr != nil || st.Record == nil {
		t.Fatal(rerr)
	}
	if stop := before.Add(cfg.TTL - cfg.Grace - cfg.Margin); cancelled.Before(stop) {
		t.Errorf("cancelled %v before the stop point", stop.Sub(cancelled))
	}
	if deadline := st.Record.AcquiredAt.Add(cfg.TTL - cfg.Margin); !cancelled.Before(deadline) {
		t.Errorf("cancelled %v after the kill point", cancelled.Sub(deadline))
	}
}

// Cancelling Do's context is not a loss: fn's error comes back as it is.
func TestDoParentCancel(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := Do(ctx, cfg, func(ctx context.Context) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || errors.Is(err, lease.ErrLost) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
}

func TestDoUsage(t *testing.T) {
	err := Do(context.Background(), Config{}, func(context.Context) error { return nil })
	if ce := (*ConfigError)(nil); !errors.As(err, &ce) {
		t.Fatalf("Do = %v, want a usage error", err)
	}
}

// TestDoOnAStore: with Config.Store, the lease is the store's, not a file's,
// and Path defaults to the store's name.
func TestDoOnAStore(t *testing.T) {
	cfg := testConfig(t)
	st := leasetest.NewMemStore("mem://job")
	cfg.Store, cfg.Path = st, ""
	var during lease.Status
	err := Do(context.Background(), cfg, func(ctx context.Context) error {
		var err error
		during, err = lease.ReadStore(ctx, st)
		return err
	})
	if err != nil {
		t.Fatalf("Do = %v", err)
	}
	if during.State != lease.StateHeld {
		t.Errorf("while fn ran the store's lease was %v, want held", during.State)
	}
	after, err := lease.ReadStore(context.Background(), st)
	if err != nil || after.State != lease.StateReleased {
		t.Errorf("after Do the store's lease is %v (%v), want released", after.State, err)
	}
	held, err := lease.AcquireStore(st, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	if err := Do(context.Background(), cfg, func(context.Context) error { return nil }); !errors.Is(err, lease.ErrHeld) || !strings.Contains(err.Error(), "mem://job") {
		t.Errorf("Do on a held store = %v, want ErrHeld naming mem://job", err)
	}
}
