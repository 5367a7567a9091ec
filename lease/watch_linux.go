package lease

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// watch watches dir, the lease's version directory: every write of the
// lease links a new version file there. It asks inotify for creations only
// (IN_CREATE), so the kernel does not wake a standby for what a write does
// besides (writing, renaming and removing temp files), and reads the events
// itself rather than through fsnotify, which would watch for every kind of
// change and hand each event through one more goroutine. inotify sees only
// this host's writes.
func watch(dir string) changes {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return changes{stop: func() {}}
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		return changes{stop: func() {}}
	}
	f := os.NewFile(uintptr(fd), dir) // non-blocking: read through the poller
	n := newNotifier()
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := f.Read(buf)
			if err != nil {
				return // closed
			}
			if v, ok := newVersion(buf[:k]); ok {
				n.report(v)
			}
		}
	}()
	return changes{C: n.c, n: n, complete: localFS(dir), stop: func() { go f.Close() }}
}

// newVersion returns the highest version whose creation the inotify events
// in buf report, or math.MaxUint64 if they say that events were lost (the
// queue overflowed) or that the watch is gone (the directory was removed):
// then the caller must read the lease again. Temp files come and go with
// every write; only a new version is news.
func newVersion(buf []byte) (newest uint64, ok bool) {
	for len(buf) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(buf[4:])
		n := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[12:]))
		if mask&(unix.IN_Q_OVERFLOW|unix.IN_IGNORED) != 0 || n > len(buf) {
			return math.MaxUint64, true
		}
		name, _, _ := bytes.Cut(buf[unix.SizeofInotifyEvent:n], []byte{0})
		if v, isVersion := parseVersion(string(name)); isVersion {
			newest, ok = max(newest, v), true
		}
		buf = buf[n:]
	}
	return newest, ok
}
