package lease

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/leaserun/leaserun/lease/internal/line"
)

// watchParent: on Linux the standby that watches the version directory
// also watches its parent. There the removal of a directory ends its watch
// only once no file in it is open any more, and the line's standbys keep
// their gates open in it: the removal shows at once only in the parent.
// The parent also reports the directory's return while it is missing.
// Elsewhere the parent is not watched (kqueue would open every file in
// it): while the directory is missing, nothing is watched, and Wait polls
// and tries again at every read (watched).
const watchParent = runtime.GOOS == "linux"

// dirWatch is the watch of the version directory: its fsnotify watcher is
// made by start, once the standby is to watch (it has no line, or leads
// it).
type dirWatch struct {
	dir, parent, base string // dir is base in parent
	n                 *notifier

	mu sync.Mutex
	w  *fsnotify.Watcher // nil before start
	// want: start was called; complete: the watches in place report every
	// new version; closed: close was called.
	want, complete, closed bool
}

// start watches the directory. It reports whether new versions are
// reported: the directory is watched, or it is missing and its parent is
// watched for its return. If not, it watches nothing.
func (d *dirWatch) start() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	if d.w == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return false
		}
		d.w = w
		go d.run(w)
	}
	d.want = true
	if d.rewatch(); !d.complete {
		d.want = false
		d.w.Remove(d.dir)
		d.w.Remove(d.parent)
		return false
	}
	return true
}

// watched reports whether every new version is reported now. If not, it
// first tries to put the watches back: Wait asks at every wake-up, so a
// standby whose directory could not be watched again when it changed (a
// full watch table, a parent gone for a moment) polls often until it can.
func (d *dirWatch) watched() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.want && !d.complete && !d.closed {
		d.rewatch()
	}
	return d.want && d.complete
}

// rewatch puts the watches in place for the directory that stands at dir
// now: first on the parent (watchParent), so that no change between the
// two goes unreported, then on the directory; a watch on a directory that
// is no longer at dir (moved away, or removed but held) is dropped first,
// since fsnotify knows a watch by its path. Only a directory is watched:
// not a file, nor a symlink, which the store refuses. It sets complete.
// The caller holds mu.
func (d *dirWatch) rewatch() {
	d.complete = false
	parent := !watchParent || d.w.Add(d.parent) == nil
	d.w.Remove(d.dir) // gone already, if fsnotify saw the directory go
	var err error
	if fi, lerr := os.Lstat(d.dir); lerr != nil {
		err = lerr
	} else if !fi.IsDir() { // a symlink, which the store refuses, or a file
		return
	} else {
		err = d.w.Add(d.dir)
	}
	switch {
	case err == nil && parent:
		d.complete = true
	case errors.Is(err, fs.ErrNotExist) && watchParent && parent:
		d.complete = true // the parent reports the directory's return
	}
}

// run reads w's events until w is closed. Temp files come and go with
// every write, in tempDir; only a new version is news. An event of the
// directory itself (from its own watch, or of its name in the parent's)
// says that it was removed, moved away, replaced, or came back, and lost
// events may have said so: the watches are no longer complete, and Wait
// is told to read the lease, before which it puts them back on the
// directory that stands at dir (watched). run itself never adds or
// removes a watch: fsnotify may hold its lock while it hands run an error.
func (d *dirWatch) run(w *fsnotify.Watcher) {
	lost := func() {
		d.mu.Lock()
		d.complete = false
		d.mu.Unlock()
		d.n.report(math.MaxUint64)
	}
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			name := filepath.Clean(ev.Name)
			switch {
			case name == d.dir:
				if ev.Op&(fsnotify.Create|fsnotify.Remove|fsnotify.Rename) != 0 {
					lost()
				}
			case filepath.Dir(name) == d.dir && ev.Has(fsnotify.Create):
				if v, isVersion := parseVersion(filepath.Base(name)); isVersion {
					d.n.report(v)
				}
			}
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			lost() // events were lost (the queue overflowed)
		}
	}
}

// close stops watching. It does not wait for the watcher to go: closing
// an inotify descriptor waits in the kernel for an SRCU grace period
// (fsnotify_destroy_group), which takes milliseconds, and the new holder
// that Wait returns should not wait for that before it starts work.
func (d *dirWatch) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.w != nil {
		go d.w.Close()
	}
}

// notifier carries a dirWatch's reports to Sleep: a wake-up on c, and the
// newest version reported.
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

// Watch starts the watch of the version directory for Wait: every write
// of the lease links a new version file there. It uses fsnotify (inotify,
// kqueue, ReadDirectoryChangesW), which sees only this host's writes. When
// the directory is removed, moved away or replaced, the watch moves to the
// directory that stands at PATH.d (dirWatch). On a local filesystem (Linux)
// the standby joins the line of the standbys (package line), and watches
// the directory only while it leads the line. Where nothing can be
// watched, the watch never reports and Wait polls.
func (s *fileStore) Watch(ctx context.Context) Watch {
	// The line's timers run on the real clock: they pace the standbys'
	// moves up the line, not the lease. retry follows a failed move;
	// handOver, armed once the standby leads, ends its hold on the place
	// next in line.
	w := &fileWatch{s: s, retry: time.NewTimer(0), handOver: time.NewTimer(0)}
	w.retry.Stop()
	w.handOver.Stop()
	d := &dirWatch{dir: filepath.Clean(s.dir), n: newNotifier()}
	d.parent, d.base = filepath.Dir(d.dir), filepath.Base(d.dir)
	if w.local = line.LocalFS(s.dir); w.local {
		w.line = line.Join(s.dir, openGate(s.dir), d.start)
	}
	if w.line == nil && !d.start() {
		d.close()
		return w
	}
	w.d = d
	return w
}

// fileWatch is the Watch of a file lease.
type fileWatch struct {
	s *fileStore
	d *dirWatch // nil where nothing is watched
	// local: the directory is on a local filesystem, which no other host
	// writes, so that a watch on it reports every change.
	local bool
	// line is this standby's place in the line of the standbys of the
	// lease on this host; nil where there is none (package line).
	line            *line.Line
	retry, handOver *time.Timer
	handOverArmed   bool
}

// Complete reports whether the version directory is watched on a local
// filesystem, by this standby or, for one behind the head of the line, by
// the head; a lost watch is put back first if it can be. Called
// before each read, it also starts the hand-over of the place next in line
// once this standby leads.
func (w *fileWatch) Complete() bool {
	if w.line.Leads() && !w.handOverArmed {
		w.handOverArmed = true
		w.handOver.Reset(handOverAfter)
	}
	if w.line != nil && !w.line.Leads() {
		return w.local // the head watches
	}
	return w.d != nil && w.d.watched() && w.local // puts it back if it can
}

// Ahead reports whether the version after rev exists.
func (w *fileWatch) Ahead(rev Revision) bool {
	n, _ := parseDecimal(rev)
	return w.s.exists(n + 1)
}

func (w *fileWatch) Close() {
	w.retry.Stop()
	w.handOver.Stop()
	w.line.Leave()
	if w.d != nil {
		w.d.close()
	}
}

// Sleep waits for the creation of a version after rev, for a move up the
// line that makes this standby the head, or for timeout.
func (w *fileWatch) Sleep(ctx context.Context, rev Revision, timeout <-chan time.Time) error {
	seen, _ := parseDecimal(rev)
	ln := w.line
	var changed <-chan struct{}
	if w.d != nil {
		changed = w.d.n.c
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
			// The creation of a version we have read already (another
			// standby's takeover, read before its report came) is no
			// news: sleep on without reading. The newest version never
			// goes down (docs/DESIGN.md, Lemma 1).
			if w.d.n.newest.Load() > seen {
				return nil
			}
		case <-ln.Closed():
			// Someone left a place in the line. A standby that died
			// closed its gates before the kernel dropped its locks: if
			// we cannot move up, try once more a moment later. A new
			// head reads at once: versions made before it watched
			// went unreported.
			moved, lead := ln.Advance()
			if !moved {
				w.retry.Reset(retryAfter)
			}
			if lead {
				return nil
			}
		case <-w.retry.C:
			if _, lead := ln.Advance(); lead {
				return nil
			}
		case <-w.handOver.C:
			ln.HandOver()
		case <-timeout:
			// A standby ahead that is frozen or stuck never leaves its
			// place: try to move up at every poll too.
			ln.Advance()
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
