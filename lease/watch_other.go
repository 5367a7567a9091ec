//go:build !linux

package lease

import (
	"math"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch watches dir, the lease's version directory: every write of the
// lease links a new version file there. It uses kqueue or
// ReadDirectoryChangesW through fsnotify; they see only this host's writes.
//
// When the directory is removed or moved away, the watch on it ends (as
// fsnotify reports it); it is put back on the directory that stands at dir
// at once if there is one, and else tried again every rewatchEvery, and at
// each of Wait's wake-ups (watched), until it is. The parent is not watched
// for the directory's return: kqueue would open every file in it.
func watch(dir string) changes {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return changes{stop: func() {}}
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return changes{stop: func() {}}
	}
	fw := &fsWatch{w: w, dir: filepath.Clean(dir), ok: true}
	n := newNotifier()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var retry <-chan time.Time // while the directory is not watched
		rewatch := func() {
			if fw.lost() {
				retry = nil
			} else {
				retry = time.After(rewatchEvery)
			}
			// Have the caller read the lease again.
			n.report(math.MaxUint64)
		}
		for {
			select {
			case <-retry:
				if fw.watched() {
					retry = nil
					n.report(math.MaxUint64) // versions made meanwhile went unreported
				} else {
					retry = time.After(rewatchEvery)
				}
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == fw.dir && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
					// The directory went: watch the one at dir, if any.
					rewatch()
					continue
				}
				// Temp files come and go with every write; only a new
				// version is news.
				if v, isVersion := parseVersion(filepath.Base(ev.Name)); isVersion && ev.Has(fsnotify.Create) {
					n.report(v)
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				// Events may have been lost (the queue overflowed), the
				// directory's removal among them: watch the one at dir
				// anew.
				rewatch()
			}
		}
	}()
	return changes{C: n.c, n: n, local: localFS(dir), watched: fw.watched, stop: func() {
		go func() {
			w.Close()
			<-done
		}()
	}}
}

// fsWatch is the state of the watch on the version directory.
type fsWatch struct {
	w   *fsnotify.Watcher
	dir string

	mu sync.Mutex
	ok bool // the directory at dir is watched
}

// rewatchEvery is how often a watcher whose directory went tries to watch
// the one at its path, until one is there.
const rewatchEvery = 100 * time.Millisecond

// lost drops the watch, which may be on a directory no longer at dir, and
// puts it on the one at dir if it can. It reports whether it did.
func (f *fsWatch) lost() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rewatch()
	return f.ok
}

// watched reports whether the directory at dir is watched, first trying to
// watch it if it is not.
func (f *fsWatch) watched() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ok {
		f.rewatch()
	}
	return f.ok
}

// rewatch watches the directory at dir. fsnotify knows a watch by its
// path, so the old one must go first, or a directory that replaced it
// would not be watched. The caller holds mu.
func (f *fsWatch) rewatch() {
	f.w.Remove(f.dir) // gone already, if fsnotify saw the directory go
	f.ok = f.w.Add(f.dir) == nil
}
