package lease

import (
	"context"
	"fmt"
	"time"
)

// Wait acquires the lease at path for ttl, waiting as a standby for as long
// as ctx allows. It takes the lease at once when it is free, released or
// unreadable, and takes over a held lease only after seeing its record
// unchanged for the record's whole TTL on its own monotonic clock, as
// Kubernetes leader election does: neither clock skew between hosts nor a
// wall-clock step can make it take over a live lease. The price is that a
// standby that starts after the holder died waits one full TTL.
//
// Changes made on this host wake Wait at once where the OS can watch files;
// otherwise, and for changes made by other hosts, it reads the lease every
// poll interval (WithPollInterval; by default ttl/10 between 10ms and 1s,
// or once a TTL, at most 30s, on a local filesystem it watches, which no
// other host can write). When PATH.d is removed, moved away or replaced,
// Wait reads the lease and watches the directory that then stands at
// PATH.d (on Linux it watches PATH.d's parent for one to come); while it
// can watch none, the default poll interval is ttl/10 again, and Wait
// tries to watch at every read. On a local filesystem on Linux, the Waits
// for one lease on this host line up through flock(2) locks on
// PATH.d/standby and PATH.d/standby.next, and only the first in line is
// woken by changes: a hint that spares the others, which still read the
// lease every poll interval, never a condition of safety (docs/DESIGN.md).
// I/O errors end the wait. A version that can't be opened though a listing
// shows it is looked at again, as by Acquire, but no longer than ctx
// allows. When ctx ends first, the error wraps both ErrHeld and ctx.Err().
func Wait(ctx context.Context, path string, ttl time.Duration, opts ...Option) (*Lease, error) {
	o := buildOptions(opts)
	if err := validate(path, ttl, &o); err != nil {
		return nil, err
	}
	s := newStore(path)
	if err := s.checkPath(); err != nil {
		return nil, err
	}
	changes := watch(s.dir)
	defer changes.Close()
	line := changes.line
	// The line's timers run on the real clock: they pace the standbys'
	// moves up the line (line_linux.go), not the lease. retry follows a
	// failed move; handOver, armed once the standby leads, ends its hold on
	// the place next in line.
	retry, handOver := time.NewTimer(0), time.NewTimer(0)
	retry.Stop()
	handOver.Stop()
	defer retry.Stop()
	defer handOver.Stop()
	handOverArmed := false

	var (
		observed   bool
		observedAt time.Time // when we first saw the newest version
		observedV  uint64
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, waitError(ctx, s, err)
		}
		if line.leads() && !handOverArmed {
			handOverArmed = true
			handOver.Reset(handOverAfter)
		}
		// Before the read: a watch put back now reports what comes after.
		complete := changes.complete()
		next := o.pollInterval
		if next == 0 {
			next = defaultPollInterval(ttl, complete)
		}
		v, err := s.readContext(ctx)
		if err != nil {
			if ctx.Err() != nil { // it ended while a stale view was looked at again
				return nil, waitError(ctx, s, ctx.Err())
			}
			return nil, err
		}
		now := o.clock.Now()
		if !observed || v.seq != observedV {
			observed, observedAt, observedV = true, now, v.seq
		}
		if v.rec == nil || v.rec.Released() || now.Sub(observedAt) >= v.rec.TTL {
			// If another standby woken by the same change has made the
			// next version already, don't write one that must lose (its
			// temp file would wake every other standby once more): the
			// change that made it wakes us to read it.
			if !s.exists(v.seq + 1) {
				l, err := take(s, v, ttl, &o)
				if l != nil || err != nil {
					return l, err
				}
				continue // someone else made the next version: judge it anew
			}
		} else {
			next = min(next, v.rec.TTL-now.Sub(observedAt))
		}
		timeout := o.clock.After(next)
		for woken := false; !woken; {
			select {
			case <-ctx.Done():
				return nil, waitError(ctx, s, ctx.Err())
			case <-changes.C:
				// The creation of a version we have read already (another
				// standby's takeover, read before its report came) is no
				// news: sleep on without reading.
				woken = changes.newest() > v.seq
			case <-line.closed():
				// Someone left a place in the line. A standby that died
				// closed its gates before the kernel dropped its locks: if
				// we cannot move up, try once more a moment later. A new
				// head reads at once: versions made before it watched
				// went unreported.
				moved, lead := line.advance()
				if !moved {
					retry.Reset(retryAfter)
				}
				woken = lead
			case <-retry.C:
				_, woken = line.advance()
			case <-handOver.C:
				line.handOver()
			case <-timeout:
				// A standby ahead that is frozen or stuck never leaves its
				// place: try to move up at every poll too.
				line.advance()
				woken = true
			}
		}
	}
}

// retryAfter is how long after a failed try to move up the line, on the
// close of a gate, a standby tries once more.
const retryAfter = 5 * time.Millisecond

// handOverAfter is how long a standby that has moved up to the head of the
// line keeps the place next in line before it lets the standbys behind it
// take the place: by then the hand-off that moved it up, in which the
// standby before it took the lease and starts its work, is over, and their
// waking up no longer competes with that work for the CPU.
const handOverAfter = 20 * time.Millisecond

// defaultPollInterval is ttl/10, between 10ms and 1s, so that a change
// made by another host is seen soon; but where every change is reported
// (a watched directory on a local filesystem, which no other host writes)
// polling only guards against a lost notification (or, behind the head of
// the line of standbys, against a head that is frozen), and a standby need
// not wake more often than once a TTL (at most 30s) for it: a hundred idle
// standbys then cost next to nothing.
func defaultPollInterval(ttl time.Duration, notified bool) time.Duration {
	if notified {
		return min(max(ttl, 10*time.Millisecond), 30*time.Second)
	}
	return min(max(ttl/10, 10*time.Millisecond), time.Second)
}

// waitError says that the wait ended, and who holds the lease. ctx has
// ended: a stale view is not looked at again.
func waitError(ctx context.Context, s *store, cause error) error {
	if v, err := s.readContext(ctx); err == nil && v.rec != nil && !v.rec.Released() {
		return fmt.Errorf("%w: gave up waiting: %w", heldError(ErrHeld, s.path, v.rec), cause)
	}
	return fmt.Errorf("%w: %s: gave up waiting: %w", ErrHeld, s.path, cause)
}
