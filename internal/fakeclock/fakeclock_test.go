package fakeclock_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/lease"
)

var _ lease.Clock = (*fakeclock.Clock)(nil)

var start = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

func fired(ch <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-ch:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestNowAndAdvance(t *testing.T) {
	c := fakeclock.New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("Now after Advance = %v, want %v", got, want)
	}
	c.Advance(0)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("Now after Advance(0) = %v, want %v", got, want)
	}
}

func TestAfterFiresWhenDue(t *testing.T) {
	c := fakeclock.New(start)
	a := c.After(10 * time.Second)
	b := c.After(5 * time.Second)
	if n := c.Pending(); n != 2 {
		t.Fatalf("Pending = %d, want 2", n)
	}
	c.Advance(5*time.Second - 1)
	if _, ok := fired(a); ok {
		t.Fatal("10s timer fired after 5s-1ns")
	}
	if _, ok := fired(b); ok {
		t.Fatal("5s timer fired after 5s-1ns")
	}
	c.Advance(1)
	if got, ok := fired(b); !ok || !got.Equal(start.Add(5*time.Second)) {
		t.Fatalf("5s timer after 5s: %v, %v; want it fired at %v", got, ok, start.Add(5*time.Second))
	}
	if _, ok := fired(a); ok {
		t.Fatal("10s timer fired after 5s")
	}
	if n := c.Pending(); n != 1 {
		t.Fatalf("Pending = %d, want 1", n)
	}
	c.Advance(time.Hour)
	if _, ok := fired(a); !ok {
		t.Fatal("10s timer did not fire after an hour")
	}
	if n := c.Pending(); n != 0 {
		t.Fatalf("Pending = %d, want 0", n)
	}
}

func TestAfterNonPositiveFiresAtOnce(t *testing.T) {
	c := fakeclock.New(start)
	for _, d := range []time.Duration{0, -time.Second} {
		if got, ok := fired(c.After(d)); !ok || !got.Equal(start) {
			t.Errorf("After(%v): %v, %v; want fired at %v", d, got, ok, start)
		}
	}
	if n := c.Pending(); n != 0 {
		t.Fatalf("Pending = %d, want 0", n)
	}
}

func TestAdvanceNegativePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Advance(-1) did not panic")
		}
	}()
	fakeclock.New(start).Advance(-1)
}

func TestBlockUntil(t *testing.T) {
	c := fakeclock.New(start)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	got := make(chan time.Time, 1)
	go func() {
		got <- <-c.After(time.Second)
	}()
	if err := c.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	if tm := <-got; !tm.Equal(start.Add(time.Second)) {
		t.Fatalf("timer delivered %v, want %v", tm, start.Add(time.Second))
	}
	if err := c.BlockUntil(ctx, 0); err != nil {
		t.Fatalf("BlockUntil(0): %v", err)
	}
}

func TestBlockUntilContextEnds(t *testing.T) {
	c := fakeclock.New(start)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.BlockUntil(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("BlockUntil with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestConcurrentUse is meant for -race: many goroutines set timers while
// others advance and read the clock.
func TestConcurrentUse(t *testing.T) {
	c := fakeclock.New(start)
	const waiters = 8
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			for range 50 {
				<-c.After(time.Millisecond)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		default:
		}
		_ = c.Now()
		_ = c.Pending()
		c.Advance(time.Millisecond)
	}
}
