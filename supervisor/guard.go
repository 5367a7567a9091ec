package supervisor

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// guard is the actor that keeps the child from outliving the lease when
// renewals keep failing. It is driven by timers set from the lease's
// deadline D, re-armed whenever a renewal has moved D, and never calls into
// the filesystem, so a renewal hung in a stuck filesystem can't delay it:
//
//   - at D - grace - margin it calls stop (the stop signal, or cancelling
//     Do's function) and, if kill is nil, returns the *LostError;
//   - at D - margin it calls kill (SIGKILL to the group) and returns it.
//
// Whenever a timer fires and the lease has expired (the process was frozen
// past its TTL), it returns a *LostError at once: the caller kills the child,
// then logs it. Nothing here waits for the log before acting.
type guard struct {
	*quit
	l             *lease.Lease
	grace, margin time.Duration
	stop          func(*LostError)
	kill          func()
	log           *slog.Logger
}

func (g *guard) run() error {
	for {
		if g.l.Expired() {
			return g.expired()
		}
		d := g.l.Deadline()
		if !g.sleepWatching(d.Add(-g.grace - g.margin)) {
			return nil
		}
		if g.l.Deadline().After(d) {
			continue // renewed meanwhile
		}
		if g.l.Expired() {
			return g.expired()
		}
		lost := &LostError{Path: g.l.Path(), Reason: fmt.Sprintf(
			"not renewed in time: stopping the child %v before the lease lapses", g.grace+g.margin)}
		g.stop(lost)
		// The log may block (a full stderr pipe nobody reads): it must not
		// hold up the kill below, so it gets a goroutine of its own.
		go g.log.Error("lease lost", "err", lost, "deadline_in", time.Until(d))
		if g.kill == nil {
			return lost
		}
		if !g.sleepWatching(d.Add(-g.margin)) {
			return nil
		}
		g.kill()
		return lost
	}
}

// expired is the loss the caller logs once it has killed the child: the
// renewal's, if a renewal found the lease lost.
func (g *guard) expired() error {
	if err := g.l.Err(); err != nil {
		return &LostError{Path: g.l.Path(), Reason: "renewal failed", Err: err}
	}
	return &LostError{Path: g.l.Path(), Reason: "the lease expired before it was renewed (was the process frozen?)"}
}

// sleepWatching sleeps until t, like sleepUntil, but wakes every margin to
// check Expired: the timer runs on the monotonic clock, which stands still
// while the machine is suspended, when the lease's wall-clock expiry (which
// others judge by) runs on. It returns true at t or as soon as the lease
// has expired, false when interrupted.
func (g *guard) sleepWatching(t time.Time) bool {
	for {
		step := min(time.Until(t), g.margin)
		if !g.sleepUntil(time.Now().Add(step)) {
			return false
		}
		if step <= 0 || !time.Now().Before(t) || g.l.Expired() {
			return true
		}
	}
}

// outcome is the first loss noticed.
type outcome struct {
	mu   sync.Mutex
	lost *LostError
}

func (o *outcome) set(err *LostError) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lost == nil {
		o.lost = err
	}
}

func (o *outcome) get() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lost == nil {
		return nil
	}
	return o.lost
}
