//go:build linux

// Package line lines up the standbys of one file lease on one host (Linux),
// so that a change of the lease wakes one of them, not all: the head of
// the line watches the lease's version directory, and each other standby
// watches, for a close, the gate of the one before it. A hint against a
// thundering herd, never a safety mechanism: docs/DESIGN.md, "The line of
// standbys". Elsewhere (line_other.go) there is no line.
package line

import (
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// LocalFS reports whether dir is on a filesystem of this machine's own
// disks or memory, where inotify reports every change, since no other host
// can write to it. Network and FUSE filesystems (NFS, SMB, sshfs), and
// overlays, are not: writes made elsewhere reach them unannounced.
func LocalFS(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	switch uint32(st.Type) {
	case 0xEF53, // ext2, ext3, ext4
		0x58465342, // xfs
		0x9123683E, // btrfs
		0xF2F52010, // f2fs
		0x01021994, // tmpfs
		0x858458F6: // ramfs
		return true
	}
	return false
}

// The gates of the standby line, in the version directory: not version
// names, so the protocol ignores them, and not in tempDir, whose old files
// cleanup removes.
const (
	GateName = "standby"      // its flock(2) makes the head of the line
	NextName = "standby.next" // its flock(2) makes the standby next in line
)

// place is a standby's place in the line.
type place int

const (
	placeBehind place = iota // watches the next gate
	placeNext                // holds the next gate and watches the gate
	placeHead                // holds the gate and watches the version directory
)

// Line is this standby's place in the line of the standbys of one lease on
// this host. Only the head watches the version directory; only the standby
// next in line watches the head's gate; the others watch the next gate. A
// close of a gate (IN_CLOSE_WRITE: standbys open the gates for writing)
// says that someone may have left a place, and wakes only those who may
// take it. A hint against a thundering herd, never a safety mechanism:
// docs/DESIGN.md, "The line of standbys".
type Line struct {
	dir string
	// lead starts the watch of the version directory, which the head
	// keeps; it reports false if it cannot.
	lead       func() bool
	gates      *gates   // watches the gates; nil for a standby that led at once
	gate, next *os.File // the gates; next is nil once given up
	place      place
}

// gates is an inotify instance that watches gates for their closes by
// writers (IN_CLOSE_WRITE: every standby opens the gates for writing, and
// a process's files close when it ends, however it ends), which fsnotify
// does not report. Every event it reads is such a close, or says that one
// may have gone unreported (an overflow, a watch gone with its file): each
// wakes the standby to try the locks. It is used from Wait's goroutine.
type gates struct {
	fd int
	f  *os.File
	c  chan struct{} // coalesced: a watched gate was closed
}

func newGates() (*gates, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	g := &gates{fd: fd, f: os.NewFile(uintptr(fd), "inotify"), c: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := g.f.Read(buf); err != nil {
				return // closed
			}
			select {
			case g.c <- struct{}{}:
			default:
			}
		}
	}()
	return g, nil
}

// watch adds a watch on the gate name for its closes by writers.
func (g *gates) watch(name string) bool {
	_, err := unix.InotifyAddWatch(g.fd, name, unix.IN_CLOSE_WRITE|unix.IN_DONT_FOLLOW)
	return err == nil
}

// close closes the instance without waiting for it (dirWatch.close says
// why).
func (g *gates) close() { go g.f.Close() }

// Join joins the line of the standbys of the lease whose version
// directory is dir. open opens a gate there, creating it if need be
// (package lease opens it as it opens every file of the lease, never
// following a symlink); lead starts the watch of the version directory,
// and reports false if it cannot. Join opens the gate, and tries to lead; if it
// cannot, it opens and watches the next gate, and then tries to be next.
// Each watch comes before the try it backs, so that a standby that leaves a
// place after our try wakes us. It returns nil, for no line, if a gate
// cannot be opened, watched or locked (a read-only directory, a filesystem
// without flock): the standby then watches the directory as if there were
// no line.
func Join(dir string, open func(name string) (*os.File, error), lead func() bool) *Line {
	gate, err := open(GateName)
	if err != nil {
		return nil
	}
	l := &Line{dir: dir, lead: lead, gate: gate}
	if ok, err := tryLock(gate); err != nil {
		l.Leave()
		return nil
	} else if ok && l.takeHead() {
		return l
	}
	if l.gates, err = newGates(); err != nil {
		l.Leave()
		return nil
	}
	if l.next, err = open(NextName); err != nil || !l.gates.watch(filepath.Join(dir, NextName)) {
		l.Leave()
		return nil
	}
	if ok, err := tryLock(l.next); err != nil {
		l.Leave()
		return nil
	} else if ok && !l.takeNext() {
		l.Leave()
		return nil
	}
	return l
}

// tryLock takes the flock of f if it is free, never blocking.
func tryLock(f *os.File) (bool, error) {
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err {
	case nil:
		return true, nil
	case unix.EWOULDBLOCK:
		return false, nil
	default:
		return false, err
	}
}

// takeNext makes the standby, holding the next gate, next in line: it
// watches the gate, and then tries it, since the head may have left before
// the watch. It reports false, holding nothing, if it cannot watch.
func (l *Line) takeNext() bool {
	if !l.gates.watch(filepath.Join(l.dir, GateName)) {
		unix.Flock(int(l.next.Fd()), unix.LOCK_UN)
		return false
	}
	l.place = placeNext
	if ok, _ := tryLock(l.gate); ok {
		l.takeHead()
	}
	return true
}

// takeHead makes the standby, holding the gate, the head: it watches the
// version directory. It reports false, having let the gate go, if it cannot.
func (l *Line) takeHead() bool {
	if l.lead() {
		l.place = placeHead
		return true
	}
	// Don't hold the gate without watching: let another standby lead.
	unix.Flock(int(l.gate.Fd()), unix.LOCK_UN)
	return false
}

// Closed delivers after a watched gate was closed, while this standby waits
// behind the head; nil otherwise.
func (l *Line) Closed() <-chan struct{} {
	if l == nil || l.place == placeHead || l.gates == nil {
		return nil
	}
	return l.gates.c
}

// Leads reports whether the standby heads the line.
func (l *Line) Leads() bool { return l != nil && l.place == placeHead }

// Advance tries, without blocking, to move up the line: to its head, or
// else to next. It reports whether the standby moved, and whether it has
// just become the head: then it watches the version directory, and the
// caller must read the lease at once, since versions made before the watch
// went unreported.
func (l *Line) Advance() (moved, lead bool) {
	if l == nil || l.place == placeHead {
		return false, false
	}
	if ok, _ := tryLock(l.gate); ok {
		lead = l.takeHead()
		return lead, lead
	}
	if l.place == placeBehind {
		if ok, _ := tryLock(l.next); ok && l.takeNext() {
			return true, l.place == placeHead
		}
	}
	return false, false
}

// HandOver gives up the next gate, which a standby that moved up to the
// head keeps for a moment (package lease's handOverAfter): its close wakes the
// standbys behind to take the place.
func (l *Line) HandOver() {
	if l == nil || l.place != placeHead || l.next == nil {
		return
	}
	unix.Flock(int(l.next.Fd()), unix.LOCK_UN)
	l.next.Close()
	l.next = nil
}

// Leave leaves the line. It unlocks both gates before closing either, since
// a close wakes others to take the places, and a close alone releases a
// lock only after the wake-up.
func (l *Line) Leave() {
	if l == nil {
		return
	}
	unix.Flock(int(l.gate.Fd()), unix.LOCK_UN)
	if l.next != nil {
		unix.Flock(int(l.next.Fd()), unix.LOCK_UN)
	}
	l.gate.Close()
	if l.next != nil {
		l.next.Close()
	}
	if l.gates != nil {
		l.gates.close()
	}
}
