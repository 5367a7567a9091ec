//go:build !linux

package lease

import (
	"math"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// watch watches dir, the lease's version directory: every write of the
// lease links a new version file there. It uses kqueue or
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
	n := newNotifier()
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
				if v, isVersion := parseVersion(filepath.Base(ev.Name)); isVersion && ev.Has(fsnotify.Create) {
					n.report(v)
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				// Events may have been lost (the queue overflowed): have
				// the caller read the lease again.
				n.report(math.MaxUint64)
			}
		}
	}()
	return changes{C: n.c, n: n, complete: localFS(dir), stop: func() {
		go func() {
			w.Close()
			<-done
		}()
	}}
}
