// Package fakeclock provides a clock for tests that moves only when the test
// says so. It implements lease.Clock (Now and After), so code under test that
// waits on After can be driven step by step without sleeping:
//
//	clk := fakeclock.New(start)
//	go codeThatWaits(clk)
//	clk.BlockUntil(ctx, 1) // the code is now waiting on a timer
//	clk.Advance(time.Second)
//
// A Clock is safe for concurrent use.
package fakeclock

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is a fake clock. Its zero value is not usable: call New.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
	// changed is closed, and replaced, whenever the set of pending timers
	// changes, to wake BlockUntil.
	changed chan struct{}
}

type timer struct {
	at time.Time
	c  chan time.Time // buffered: firing never blocks
}

// New returns a clock that reads start until it is advanced. Its readings
// carry no monotonic clock reading.
func New(start time.Time) *Clock {
	return &Clock{now: start.Round(0), changed: make(chan struct{})}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the clock's time once the clock has
// been advanced by d or more from now. A d of zero or less fires at once.
// Like time.After, the channel has a buffer of one and is never closed; a
// timer nobody reads is simply dropped when it fires.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, &timer{at: c.now.Add(d), c: ch})
	c.notifyLocked()
	return ch
}

// Advance moves the clock forward by d and fires, in deadline order, every
// timer that is then due. It panics if d is negative: a clock that goes back
// is not what After's users expect.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic("fakeclock: Advance with a negative duration")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	slices.SortStableFunc(c.timers, func(a, b *timer) int { return a.at.Compare(b.at) })
	fired := 0
	for _, t := range c.timers {
		if t.at.After(c.now) {
			break
		}
		t.c <- c.now
		fired++
	}
	if fired > 0 {
		c.timers = slices.Delete(c.timers, 0, fired)
		c.notifyLocked()
	}
}

// Pending returns the number of timers that have not fired yet.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// BlockUntil waits until at least n timers are pending, which tells a test
// that the code it drives is waiting on the clock. It returns ctx.Err() if ctx
// ends first. Timers whose channel nobody reads any more still count until
// they fire.
func (c *Clock) BlockUntil(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		pending, changed := len(c.timers), c.changed
		c.mu.Unlock()
		if pending >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *Clock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}
