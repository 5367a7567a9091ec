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
// With WithOncePer, it ends with an error wrapping ErrDone as soon as it
// reads a record whose slot says that the current slot has had its run.
// I/O errors end the wait. A version that can't be opened though a listing
// shows it is looked at again, as by Acquire, but no longer than ctx
// allows. When ctx ends first, the error wraps both ErrHeld and ctx.Err().
//
// Wait(ctx, path, ...) is WaitStore(ctx, Files(path), ...).
func Wait(ctx context.Context, path string, ttl time.Duration, opts ...Option) (*Lease, error) {
	if path == "" {
		return nil, errEmptyPath
	}
	return WaitStore(ctx, Files(path), ttl, opts...)
}

// WaitStore is Wait for the lease kept in st. Where st is a Watcher, a
// change it reports wakes the standby at once (and where its watch is a
// ReportingWatch, the standby judges the value reported rather than read
// the lease again); otherwise it reads the lease every poll interval (by
// default ttl/10, between 10ms and 1s). Each of its calls of st is bounded
// by ttl as well as by ctx.
func WaitStore(ctx context.Context, st Store, ttl time.Duration, opts ...Option) (*Lease, error) {
	o := buildOptions(opts)
	if err := validate(st, ttl, &o); err != nil {
		return nil, err
	}
	var w Watch
	if ws, ok := st.(Watcher); ok {
		w = ws.Watch(ctx)
	}
	if w != nil {
		defer w.Close()
	}

	var (
		observed   bool
		observedAt time.Time // when we first saw the current value
		observedV  Revision
		reported   *Value // the value the watch reported on waking, judged instead of a Load
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, waitError(st, ttl, &o, err)
		}
		// Before the read: a watch put back now reports what comes after.
		complete := w != nil && w.Complete()
		next := o.pollInterval
		if next == 0 {
			next = defaultPollInterval(ttl, complete)
		}
		var (
			v   Value
			rec *Record
			err error
		)
		if reported != nil {
			v, rec, reported = *reported, recordOf(reported), nil
		} else {
			lctx, cancel := within(ctx, o.clock, o.clock.Now().Add(ttl))
			v, rec, err = load(lctx, st)
			cancel()
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return nil, waitError(st, ttl, &o, cerr)
				}
				return nil, err
			}
		}
		now := o.clock.Now()
		if err := doneError(st, rec, now, &o); err != nil {
			return nil, err
		}
		if !observed || v.Rev != observedV {
			observed, observedAt, observedV = true, now, v.Rev
		}
		if rec == nil || rec.Released() || now.Sub(observedAt) >= rec.TTL {
			// If another standby woken by the same change has made the
			// next value already, don't write one that must lose (with
			// files, its temp file would wake every other standby once
			// more): the change that made it wakes us to read it.
			if w == nil || !w.Ahead(v.Rev) {
				l, err := take(st, v, rec, ttl, &o)
				if l != nil || err != nil {
					return l, err
				}
				continue // someone else made the next value: judge it anew
			}
		} else {
			next = min(next, rec.TTL-now.Sub(observedAt))
		}
		timeout := o.clock.After(next)
		if w != nil {
			err = w.Sleep(ctx, v.Rev, timeout)
		} else {
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-timeout:
			}
		}
		if err != nil {
			return nil, waitError(st, ttl, &o, err)
		}
		if rw, ok := w.(ReportingWatch); ok {
			if nv, ok := rw.Latest(v.Rev); ok {
				reported = &nv
			}
		}
	}
}

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

// waitErrorRead bounds waitError's read of the lease: the caller, whose
// context ended, is owed a prompt answer more than a full one.
const waitErrorRead = 2 * time.Second

// waitError says that the wait ended, and who holds the lease.
func waitError(st Store, ttl time.Duration, o *options, cause error) error {
	ctx, cancel := within(context.Background(), o.clock, o.clock.Now().Add(min(ttl, waitErrorRead)))
	defer cancel()
	if _, rec, err := load(ctx, st); err == nil && rec != nil && !rec.Released() {
		return fmt.Errorf("%w: gave up waiting: %w", heldError(ErrHeld, st, rec), cause)
	}
	return fmt.Errorf("%w: %s: gave up waiting: %w", ErrHeld, st, cause)
}
