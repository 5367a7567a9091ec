//go:build linux

package lease

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// inotify is Wait's watch on Linux: one inotify descriptor, read by one
// goroutine, that carries the watches on the version directory and its
// parent and, for a standby in the line (line_linux.go), the watches on the
// line's gates.
type inotify struct {
	fd           int
	dir          string
	parent, base string // dir is base in parent
	n            *notifier
	gate         chan struct{} // coalesced: a watched gate was closed

	// mu makes the reader classify events only by watches whose
	// descriptors are known: an event of a watch being added waits until
	// its descriptor is recorded.
	mu    sync.Mutex
	gates []int32 // the watch descriptors of gates
	// dirWd watches the version directory, parentWd its parent for the
	// directory's removal or, while it is missing, its return; -1 for none.
	dirWd, parentWd int32
	// want: the standby watches the directory (it has no line, or leads
	// it); complete: the watches in place report every new version.
	want, complete bool
	// closed: the descriptor is closed, or about to be, and its number
	// may name another file: no more watches are added or removed.
	closed bool
}

// The masks of the watches on the version directory and its parent.
//
// A directory's own IN_IGNORED (or IN_DELETE_SELF) comes only once nothing
// holds it any more, and every file open in it holds it: after rm -rf
// PATH.d, the gates that the line's standbys keep open hold the removed
// directory for as long as they wait. Its removal shows at once only in its
// parent, as IN_DELETE of its name; a rename away or an exchange
// (renameat2(RENAME_EXCHANGE)) shows as IN_MOVE_SELF on the directory. A
// directory renamed onto PATH.d can only replace an empty one, which
// nothing holds. While PATH.d is watched the parent's watch asks for
// deletions only: each write renames a new record onto PATH, in the parent,
// and that should not wake the standby a second time.
const (
	dirMask           = unix.IN_CREATE | unix.IN_MOVE_SELF | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW
	parentWatchedMask = unix.IN_DELETE | unix.IN_ONLYDIR
	parentMissingMask = unix.IN_DELETE | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ONLYDIR
)

// watch watches dir, the lease's version directory: every write of the
// lease links a new version file there. It asks inotify for creations only
// (IN_CREATE), so the kernel does not wake a standby for what a write does
// besides (writing, renaming and removing temp files), and reads the events
// itself rather than through fsnotify, which would watch for every kind of
// change and hand each event through one more goroutine. inotify sees only
// this host's writes.
//
// When the directory is removed, moved away or replaced, the watch moves
// to the directory that stands at dir, or, while there is none, waits in
// the parent for one to come (watchDir).
//
// On a local filesystem the standby joins the line of the standbys
// (joinLine), and watches the directory only while it leads the line.
func watch(dir string) changes {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return changes{stop: func() {}}
	}
	w := &inotify{fd: fd, dir: dir, parent: filepath.Dir(dir), base: filepath.Base(dir),
		n: newNotifier(), gate: make(chan struct{}, 1), dirWd: -1, parentWd: -1}
	local := localFS(dir)
	var ln *line
	if local {
		ln = joinLine(w)
	}
	if ln == nil && !w.watchDir() {
		unix.Close(fd)
		return changes{stop: func() {}}
	}
	f := os.NewFile(uintptr(fd), dir) // non-blocking: read through the poller
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := f.Read(buf)
			if err != nil {
				return // closed
			}
			w.mu.Lock()
			ev := parseEvents(buf[:k], w.watches())
			if ev.rewatch && w.want && !w.closed {
				w.rewatch()
			}
			w.mu.Unlock()
			if ev.ok {
				w.n.report(ev.newest)
			}
			if ev.gate {
				select {
				case w.gate <- struct{}{}:
				default:
				}
			}
		}
	}()
	stop := func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		go f.Close()
	}
	return changes{C: w.n.c, n: w.n, local: local, line: ln, watched: w.watched, stop: stop}
}

// watchDir watches the version directory, and its parent for its removal
// or return. It reports whether new versions are reported: the directory
// is watched, or it is missing and its parent is watched for its return.
// If not, it watches nothing.
func (w *inotify) watchDir() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.want = true
	if w.rewatch(); w.dirWd < 0 && !w.complete {
		w.unwatch()
		return false
	}
	return true
}

// watched reports whether every new version is reported now. If not, it
// first tries to put the watches back: Wait asks at every wake-up, so a
// standby whose directory could not be watched again when it changed (a
// full watch table, a parent gone for a moment) polls often until it can.
func (w *inotify) watched() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.want && !w.complete && !w.closed {
		w.rewatch()
	}
	return w.want && w.complete
}

// rewatch puts the watches in place for the directory that stands at dir
// now: first on the parent, for a removal or a return of the directory,
// then on the directory, so that no change between the two goes
// unreported; a watch on a directory that is no longer at dir (moved away,
// or removed but held) is dropped. It sets complete. The caller holds mu.
func (w *inotify) rewatch() {
	w.complete = false
	parent := w.add(&w.parentWd, w.parent, parentMissingMask) == nil
	err := w.add(&w.dirWd, w.dir, dirMask)
	switch {
	case err == nil && parent:
		w.complete = w.add(&w.parentWd, w.parent, parentWatchedMask) == nil
	case errors.Is(err, unix.ENOENT) && parent:
		w.complete = true // the parent reports the directory's return
	}
}

// add sets the watch *wd on name with mask, replacing one on what name
// named before.
func (w *inotify) add(wd *int32, name string, mask uint32) error {
	n, err := unix.InotifyAddWatch(w.fd, name, mask)
	if err == nil && int32(n) == *wd {
		return nil
	}
	if *wd >= 0 {
		// Its IN_IGNORED, which may come much later, is of a watch that
		// is no longer ours: parseEvents passes over it.
		unix.InotifyRmWatch(w.fd, uint32(*wd))
		*wd = -1
	}
	if err != nil {
		return err
	}
	*wd = int32(n)
	return nil
}

// unwatch drops the watches of the directory and its parent. The caller
// holds mu.
func (w *inotify) unwatch() {
	for _, wd := range []*int32{&w.dirWd, &w.parentWd} {
		if *wd >= 0 {
			unix.InotifyRmWatch(w.fd, uint32(*wd))
			*wd = -1
		}
	}
	w.want, w.complete = false, false
}

// watchGate adds a watch on the gate name for its closes by writers (every
// standby opens the gates for writing).
func (w *inotify) watchGate(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	wd, err := unix.InotifyAddWatch(w.fd, name, unix.IN_CLOSE_WRITE|unix.IN_DONT_FOLLOW)
	if err != nil {
		return false
	}
	w.gates = append(w.gates, int32(wd))
	return true
}

// watches are the watch descriptors that events are classified by.
type watches struct {
	dir, parent int32
	base        string // the directory's name in its parent
	gates       []int32
}

// watches returns the current watches. The caller holds mu.
func (w *inotify) watches() watches {
	return watches{dir: w.dirWd, parent: w.parentWd, base: w.base, gates: w.gates}
}

// events is what a read of inotify events says.
type events struct {
	// newest is the highest version whose creation they report (ok), or
	// math.MaxUint64 if they say that events were lost (the queue
	// overflowed) or that the directory changed: then the caller must read
	// the lease again.
	newest uint64
	ok     bool
	// gate: a gate (a watch in gates) was closed, or a close may have
	// gone unreported.
	gate bool
	// rewatch: the version directory was removed, moved away or replaced,
	// or came back, or events that say so may have been lost: the caller
	// must put its watches in place again.
	rewatch bool
}

// parseEvents reads the inotify events in buf. Temp files come and go
// with every write; only a new version is news. Events of a watch not in
// ws (one dropped since) say nothing.
func parseEvents(buf []byte, ws watches) (ev events) {
	changed := func() { ev.newest, ev.ok, ev.rewatch = math.MaxUint64, true, true }
	for len(buf) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(buf[0:]))
		mask := binary.NativeEndian.Uint32(buf[4:])
		n := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[12:]))
		if mask&unix.IN_Q_OVERFLOW != 0 || n > len(buf) {
			changed()
			ev.gate = len(ws.gates) > 0
			return ev
		}
		name, _, _ := bytes.Cut(buf[unix.SizeofInotifyEvent:n], []byte{0})
		switch {
		case slices.Contains(ws.gates, wd):
			ev.gate = true
		case wd == ws.dir && mask&(unix.IN_IGNORED|unix.IN_MOVE_SELF) != 0:
			changed()
		case wd == ws.dir:
			if v, isVersion := parseVersion(string(name)); isVersion {
				ev.newest, ev.ok = max(ev.newest, v), true
			}
		case wd == ws.parent && (mask&unix.IN_IGNORED != 0 || string(name) == ws.base):
			changed()
		}
		buf = buf[n:]
	}
	return ev
}
