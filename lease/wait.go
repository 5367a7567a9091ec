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
// other host can write). I/O errors end the wait. When ctx ends
// first, the error wraps both ErrHeld and ctx.Err().
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
	if o.pollInterval == 0 {
		o.pollInterval = defaultPollInterval(ttl, changes.complete)
	}

	var (
		observed   bool
		observedAt time.Time // when we first saw the newest version
		observedV  uint64
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, waitError(s, err)
		}
		v, err := s.read()
		if err != nil {
			return nil, err
		}
		now := o.clock.Now()
		if !observed || v.seq != observedV {
			observed, observedAt, observedV = true, now, v.seq
		}
		next := o.pollInterval
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
				return nil, waitError(s, ctx.Err())
			case <-changes.C:
				// The creation of a version we have read already (another
				// standby's takeover, read before its report came) is no
				// news: sleep on without reading.
				woken = changes.newest() > v.seq
			case <-timeout:
				woken = true
			}
		}
	}
}

// defaultPollInterval is ttl/10, between 10ms and 1s, so that a change
// made by another host is seen soon; but where every change is reported
// (a watched directory on a local filesystem, which no other host writes)
// polling only guards against a lost notification, and a standby need not
// wake more often than once a TTL (at most 30s) for it: a hundred idle
// standbys then cost next to nothing.
func defaultPollInterval(ttl time.Duration, notified bool) time.Duration {
	if notified {
		return min(max(ttl, 10*time.Millisecond), 30*time.Second)
	}
	return min(max(ttl/10, 10*time.Millisecond), time.Second)
}

// waitError says that the wait ended, and who holds the lease.
func waitError(s *store, cause error) error {
	if v, err := s.read(); err == nil && v.rec != nil && !v.rec.Released() {
		return fmt.Errorf("%w: gave up waiting: %w", heldError(ErrHeld, s.path, v.rec), cause)
	}
	return fmt.Errorf("%w: %s: gave up waiting: %w", ErrHeld, s.path, cause)
}
