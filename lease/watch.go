package lease

import (
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// changes delivers a value on C, coalesced, after anything in the watched
// directory changed. Where nothing can be watched C never fires and the
// caller's polling does all the work.
type changes struct {
	C    <-chan struct{}
	stop func()
	// complete: every change to the directory is reported (it is watched
	// and on a local filesystem), so polling is only a safety net.
	complete bool
}

// Close stops watching. It does not wait for the watcher to go: closing an
// inotify descriptor waits in the kernel for an SRCU grace period
// (fsnotify_destroy_group), 5-15ms here, and the new holder that Wait
// returns should not wait for that before it starts work. The watcher's
// goroutine ends once the descriptor is closed.
func (c changes) Close() { c.stop() }

// watch watches dir, the lease's version directory: every write of the
// lease creates a file there. It uses inotify, kqueue or
// ReadDirectoryChangesW through fsnotify; they see only this host's writes.
func watch(dir string) changes {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return changes{stop: func() {}}
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return changes{stop: func() {}}
	}
	c := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				// Temp files come and go with every write; only a new
				// version is news.
				if _, isVersion := parseVersion(filepath.Base(ev.Name)); !isVersion || !ev.Has(fsnotify.Create) {
					continue
				}
				select {
				case c <- struct{}{}:
				default:
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				// Events may have been lost (the queue overflowed): have
				// the caller read the lease again.
				select {
				case c <- struct{}{}:
				default:
				}
			}
		}
	}()
	return changes{C: c, complete: localFS(dir), stop: func() {
		go func() {
			w.Close()
			<-done
		}()
	}}
}
