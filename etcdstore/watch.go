package etcdstore

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/leaserun/leaserun/lease"
)

// Watch watches the key for a standby (lease.Watcher): an etcd watch,
// from the revision at which the server set it up, whose events wake
// Sleep. It is a lease.ReportingWatch: an event carries the key's new
// value (or its deletion), which Latest gives Wait as a Load would, with
// the response's revision as its Floor, so that a standby woken by a
// release makes its Swap without reading the key again. A watch the
// server cancels (its member lost the leader, or the watch fell behind a
// compaction) or that ends is put back by the next Complete; until it is
// in place again, Complete is false and Wait polls.
func (s *Store) Watch(ctx context.Context) lease.Watch {
	w := &watch{s: s, ctx: ctx, changed: make(chan struct{})}
	w.mu.Lock()
	w.establish()
	w.mu.Unlock()
	return w
}

// watch is one standby's watch of the key.
type watch struct {
	s   *Store
	ctx context.Context // Wait's

	mu      sync.Mutex
	gen     int                // counts the watches set up; events of older ones are ignored
	cancel  context.CancelFunc // ends the current watch
	created bool               // the server has set the current watch up
	broken  bool               // the current watch ended: Complete sets up another
	trusted bool               // the last Complete reported the watch in place
	closed  bool
	latest  int64         // the highest revision of an event of the key seen
	value   *lease.Value  // the value the event at latest left
	mark    int64         // latest, at the last Complete
	changed chan struct{} // closed and replaced when an event comes or the watch breaks
}

// establish sets up a new watch. The caller holds w.mu.
func (w *watch) establish() {
	if w.cancel != nil {
		w.cancel()
	}
	w.gen++
	// WithRequireLeader: a member cut off from its leader cancels the
	// watch rather than keep it silently.
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(w.ctx))
	w.cancel, w.created, w.broken = cancel, false, false
	ch := w.s.cli.Watch(ctx, w.s.key, clientv3.WithCreatedNotify())
	go w.run(w.gen, ch, cancel)
}

// run reads one watch's responses.
func (w *watch) run(gen int, ch clientv3.WatchChan, cancel context.CancelFunc) {
	defer cancel()
	for resp := range ch {
		w.mu.Lock()
		if gen != w.gen {
			w.mu.Unlock()
			return
		}
		if resp.Canceled || resp.Err() != nil {
			w.broke()
			w.mu.Unlock()
			return
		}
		if resp.Created {
			w.created = true
		}
		for _, ev := range resp.Events {
			if ev.Kv != nil && ev.Kv.ModRevision > w.latest {
				w.latest = ev.Kv.ModRevision
				w.value = eventValue(ev, resp.Header.Revision)
			}
		}
		if len(resp.Events) > 0 {
			w.notify()
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	if gen == w.gen {
		w.broke()
	}
	w.mu.Unlock()
}

// broke marks the current watch ended and wakes Sleep, so that Wait reads
// and the next Complete puts the watch back. The caller holds w.mu.
func (w *watch) broke() {
	if !w.broken {
		w.broken = true
		w.notify()
	}
}

// notify wakes Sleep. The caller holds w.mu.
func (w *watch) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Complete reports whether the watch is in place, so that every change
// after the read that follows is reported; a broken watch is set up anew
// here (it is in place only once the server says so: until then, false).
func (w *watch) Complete() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mark = w.latest
	w.trusted = false
	if w.closed || w.ctx.Err() != nil {
		return false
	}
	if w.broken {
		w.establish()
	}
	w.trusted = w.created
	return w.trusted
}

// Ahead reports whether an event of a write after the value at rev came:
// that value is replaced already.
func (w *watch) Ahead(rev lease.Revision) bool {
	n, ok := parseRev(rev)
	if !ok {
		return false // no key: an event says nothing a Swap would not
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest > n
}

// eventValue is the value the event ev left, as Load would have returned
// it at the revision of the response that carried it: a put's value, or
// none for a deletion.
func eventValue(ev *clientv3.Event, revision int64) *lease.Value {
	// etcd sends a response's revision at or above its events'; the
	// event's own bounds the Floor from below all the same.
	v := &lease.Value{Floor: uint64(max(revision, ev.Kv.ModRevision, 0))}
	if ev.Type == clientv3.EventTypePut {
		v.Rev = formatRev(ev.Kv.ModRevision)
		v.Data = capData(ev.Kv.Value)
	}
	return v
}

// Latest returns the value the newest event left, if that event came
// after the value at rev (for rev "", after the last Complete) and the
// watch is not broken now.
func (w *watch) Latest(rev lease.Revision) (lease.Value, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	after, ok := parseRev(rev)
	if !ok {
		after = w.mark
	}
	if w.broken || w.closed || w.value == nil || w.latest <= after {
		return lease.Value{}, false
	}
	return *w.value, true
}

// Sleep returns nil once an event of a write after the value at rev came
// (for rev "", no key: an event after the last Complete, which came
// before the read that found no key), once the watch breaks, or once
// timeout fires; ctx.Err() once ctx ends. A watch that broke after the
// last Complete reported it in place returns at once: Wait then polls
// seldom (by default), and a change since may have gone unreported. One
// that was not in place then (Wait polls often) sleeps on until a new
// break.
func (w *watch) Sleep(ctx context.Context, rev lease.Revision, timeout <-chan time.Time) error {
	w.mu.Lock()
	after, ok := parseRev(rev)
	if !ok {
		after = w.mark
	}
	if w.broken && w.trusted {
		w.mu.Unlock()
		return nil
	}
	wasBroken := w.broken
	w.mu.Unlock()
	for {
		w.mu.Lock()
		if w.latest > after || w.broken && !wasBroken {
			w.mu.Unlock()
			return nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return nil
		case <-ch:
		}
	}
}

// Close ends the watch; it does not wait for the server.
func (w *watch) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.gen++
	if w.cancel != nil {
		w.cancel()
	}
}
