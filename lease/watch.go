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
}

// Close stops watching and waits for the watcher's goroutine to end.
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
			}
		}
	}()
	return changes{C: c, stop: func() { w.Close(); <-done }}
}
