//go:build linux

package lease

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// inotify is Wait's watch on Linux: one inotify descriptor, read by one
// goroutine, that carries the watch on the version directory and, for a
// standby in the line (line_linux.go), the watches on the line's gates.
type inotify struct {
	fd   int
	dir  string
	n    *notifier
	gate chan struct{} // coalesced: a watched gate was closed

	// mu makes the reader classify events only by watches whose
	// descriptors are known: an event of a watch being added waits until
	// its descriptor is recorded.
	mu    sync.Mutex
	gates []int32 // the watch descriptors of gates
}

// watch watches dir, the lease's version directory: every write of the
// lease links a new version file there. It asks inotify for creations only
// (IN_CREATE), so the kernel does not wake a standby for what a write does
// besides (writing, renaming and removing temp files), and reads the events
// itself rather than through fsnotify, which would watch for every kind of
// change and hand each event through one more goroutine. inotify sees only
// this host's writes.
//
// On a local filesystem the standby joins the line of the standbys
// (joinLine), and watches the directory only while it leads the line.
func watch(dir string) changes {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return changes{stop: func() {}}
	}
	w := &inotify{fd: fd, dir: dir, n: newNotifier(), gate: make(chan struct{}, 1)}
	complete := localFS(dir)
	var ln *line
	if complete {
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
			v, ok, gate := parseEvents(buf[:k], w.gates)
			w.mu.Unlock()
			if ok {
				w.n.report(v)
			}
			if gate {
				select {
				case w.gate <- struct{}{}:
				default:
				}
			}
		}
	}()
	return changes{C: w.n.c, n: w.n, complete: complete, line: ln, stop: func() { go f.Close() }}
}

// watchDir adds the watch on the version directory.
func (w *inotify) watchDir() bool {
	_, err := unix.InotifyAddWatch(w.fd, w.dir, unix.IN_CREATE|unix.IN_ONLYDIR)
	return err == nil
}

// watchGate adds a watch on the gate name for its closes by writers (every
// standby opens the gates for writing).
func (w *inotify) watchGate(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	wd, err := unix.InotifyAddWatch(w.fd, name, unix.IN_CLOSE_WRITE)
	if err != nil {
		return false
	}
	w.gates = append(w.gates, int32(wd))
	return true
}

// parseEvents reads the inotify events in buf. newest is the highest
// version whose creation they report (ok), or math.MaxUint64 if they say
// that events were lost (the queue overflowed) or that the directory's watch
// is gone (the directory was removed): then the caller must read the lease
// again. Temp files come and go with every write; only a new version is
// news. gate says that a gate (a watch in gates) was closed, or that a close
// may have gone unreported.
func parseEvents(buf []byte, gates []int32) (newest uint64, ok, gate bool) {
	for len(buf) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(buf[0:]))
		mask := binary.NativeEndian.Uint32(buf[4:])
		n := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[12:]))
		if mask&unix.IN_Q_OVERFLOW != 0 || n > len(buf) {
			return math.MaxUint64, true, len(gates) > 0
		}
		switch {
		case slices.Contains(gates, wd):
			gate = true
		case mask&unix.IN_IGNORED != 0:
			newest, ok = math.MaxUint64, true
		default:
			name, _, _ := bytes.Cut(buf[unix.SizeofInotifyEvent:n], []byte{0})
			if v, isVersion := parseVersion(string(name)); isVersion {
				newest, ok = max(newest, v), true
			}
		}
		buf = buf[n:]
	}
	return newest, ok, gate
}
