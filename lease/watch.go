package lease

import (
	"context"
	"math"
	"sync/atomic"
	"time"
)

// changes delivers a value on C, coalesced, after a new version appeared in
// the watched directory. Where nothing can be watched C never fires and the
// caller's polling does all the work.
type changes struct {
	C    <-chan struct{}
	stop func()
	// local: the directory is on a local filesystem, which no other host
	// writes, so that a watch on it reports every change.
	local bool
	// watched reports whether the directory's watch is in place, first
	// putting it back if it is gone; nil where nothing is watched.
	watched func() bool
	n       *notifier
	// line is this standby's place in the line of the standbys of the
	// lease on this host; nil where there is none (line_linux.go).
	line *line
}

// Close leaves the line and stops watching. It does not wait for the
// watcher to go: closing an inotify descriptor waits in the kernel for an
// SRCU grace period (fsnotify_destroy_group), 5-15ms here, and the new
// holder that Wait returns should not wait for that before it starts work.
// The watcher's goroutine ends once the descriptor is closed.
func (c changes) Close() {
	c.line.leave()
	c.stop()
}

// complete reports whether every change to the directory is reported now,
// so that polling is only a safety net: it is on a local filesystem, and it
// is watched, by this standby or, for one behind the head of the line, by
// the head. When the directory is removed, moved away or replaced, the
// watcher moves its watch to the one that stands at its path, or where it
// can (Linux) waits for one to come; while it can do neither, this is
// false, and each call tries again.
func (c changes) complete() bool {
	if c.line != nil && !c.line.leads() {
		return c.local
	}
	watched := c.watched != nil && c.watched() // puts it back if it can
	return c.local && watched
}

// newest is the highest version whose creation was reported, or
// math.MaxUint64 once reports may have been lost. A report of a version no
// newer than one the caller has read already is no news: the newest version
// never goes down (docs/DESIGN.md, Lemma 1), so such a version was read as
// the newest already, or is a stray below it.
func (c changes) newest() uint64 {
	if c.n == nil {
		return math.MaxUint64
	}
	return c.n.newest.Load()
}

// notifier is the watcher's side of changes.
type notifier struct {
	c      chan struct{}
	newest atomic.Uint64
}

func newNotifier() *notifier { return &notifier{c: make(chan struct{}, 1)} }

// report says that version v was created; math.MaxUint64 says that
// creations may have gone unreported.
func (n *notifier) report(v uint64) {
	for {
		old := n.newest.Load()
		if v <= old || n.newest.CompareAndSwap(old, v) {
			break
		}
	}
	select {
	case n.c <- struct{}{}:
	default:
	}
}

// Watch starts the watch of the version directory (watch) for Wait, and
// with it this standby's place in the line of the standbys (line_linux.go).
// Where nothing can be watched, the watch never reports and Wait polls.
func (s *fileStore) Watch(ctx context.Context) Watch {
	// The line's timers run on the real clock: they pace the standbys'
	// moves up the line, not the lease. retry follows a failed move;
	// handOver, armed once the standby leads, ends its hold on the place
	// next in line.
	w := &fileWatch{s: s, c: watch(s.dir), retry: time.NewTimer(0), handOver: time.NewTimer(0)}
	w.retry.Stop()
	w.handOver.Stop()
	return w
}

// fileWatch is the Watch of a file lease.
type fileWatch struct {
	s               *fileStore
	c               changes
	retry, handOver *time.Timer
	handOverArmed   bool
}

// Complete reports whether the version directory is watched on a local
// filesystem (changes.complete, which puts a lost watch back). Called
// before each read, it also starts the hand-over of the place next in line
// once this standby leads.
func (w *fileWatch) Complete() bool {
	if w.c.line.leads() && !w.handOverArmed {
		w.handOverArmed = true
		w.handOver.Reset(handOverAfter)
	}
	return w.c.complete()
}

// Ahead reports whether the version after rev exists.
func (w *fileWatch) Ahead(rev Revision) bool {
	n, _ := parseDecimal(rev)
	return w.s.exists(n + 1)
}

func (w *fileWatch) Close() {
	w.retry.Stop()
	w.handOver.Stop()
	w.c.Close()
}

// Sleep waits for the creation of a version after rev, for a move up the
// line that makes this standby the head, or for timeout.
func (w *fileWatch) Sleep(ctx context.Context, rev Revision, timeout <-chan time.Time) error {
	seen, _ := parseDecimal(rev)
	line := w.c.line
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.c.C:
			// The creation of a version we have read already (another
			// standby's takeover, read before its report came) is no
			// news: sleep on without reading.
			if w.c.newest() > seen {
				return nil
			}
		case <-line.closed():
			// Someone left a place in the line. A standby that died
			// closed its gates before the kernel dropped its locks: if
			// we cannot move up, try once more a moment later. A new
			// head reads at once: versions made before it watched
			// went unreported.
			moved, lead := line.advance()
			if !moved {
				w.retry.Reset(retryAfter)
			}
			if lead {
				return nil
			}
		case <-w.retry.C:
			if _, lead := line.advance(); lead {
				return nil
			}
		case <-w.handOver.C:
			line.handOver()
		case <-timeout:
			// A standby ahead that is frozen or stuck never leaves its
			// place: try to move up at every poll too.
			line.advance()
			return nil
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
