package lease

import (
	"math"
	"sync/atomic"
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
