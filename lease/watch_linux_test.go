//go:build linux

package lease

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaitWatchesTheNewDirectory: a standby whose version directory is
// removed, moved away or replaced by another watches the directory that
// then stands at PATH.d, and so takes a release made there at once. The
// standby polls once an hour and its clock never moves, so only a watch on
// the new directory can wake it within the bound.
//
// Where PATH.d is missing for a moment the lease is free, and a standby that
// read it then would take it; so the standby's first read after the change
// waits until a copy of the holder's version stands at PATH.d again.
func TestWaitWatchesTheNewDirectory(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change changes the version directory dir, whose newest version
		// is named v and holds data, and leaves a copy of that version in
		// a new directory at dir.
		change func(t *testing.T, dir, v string, data []byte)
	}{
		{"removed", func(t *testing.T, dir, v string, data []byte) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			makeVersionDir(t, dir, v, data)
		}},
		{"moved away", func(t *testing.T, dir, v string, data []byte) {
			if err := os.Rename(dir, dir+".old"); err != nil {
				t.Fatal(err)
			}
			makeVersionDir(t, dir, v, data)
		}},
		{"replaced", func(t *testing.T, dir, v string, data []byte) {
			makeVersionDir(t, dir+".new", v, data)
			// Atomically: PATH.d is never missing, and the old directory
			// lives on under the other name.
			if err := unix.Renameat2(unix.AT_FDCWD, dir+".new", unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); err != nil {
				t.Skipf("renameat2(RENAME_EXCHANGE): %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			entered, proceed := make(chan struct{}), make(chan struct{})
			var once sync.Once
			letGo := func() { once.Do(func() { close(proceed) }) }
			setHooks(t, nil, func() {
				if armed.CompareAndSwap(true, false) {
					close(entered)
					<-proceed
				}
			})
			path, holder := heldLocalLease(t, time.Hour)
			dir := path + ".d"
			w := startInProcessWait(t, path)
			t.Cleanup(letGo) // before the Wait is stopped
			waitFor(t, "the standby watching the version directory", func() bool { return dirWatches(dir) == 1 })

			v, err := newFileStore(path).read()
			if err != nil {
				t.Fatal(err)
			}
			name := strconv.FormatUint(v.seq, 10)
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			armed.Store(true)
			tc.change(t, dir, name, data)
			letGo()
			select {
			case <-entered:
			case <-time.After(lineBound):
				t.Fatalf("the standby did not read the lease within %v after its directory was %s", lineBound, tc.name)
			}
			// Back asleep, having read the holder's version anew.
			bound, cancel := context.WithTimeout(context.Background(), lineBound)
			defer cancel()
			if err := w.clk.BlockUntil(bound, 2); err != nil {
				t.Fatal("the standby did not wait on its clock again")
			}
			if w.returned(t) {
				t.Fatal("the standby took the lease while it was held")
			}

			if err := holder.Release(); err != nil {
				t.Fatal(err)
			}
			w.waitReturn(t, "the holder released in the new directory")
			if err := w.l.Release(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// makeVersionDir makes the version directory dir with the version v, which
// holds data.
func makeVersionDir(t *testing.T, dir, v string, data []byte) {
	t.Helper()
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, v), data, 0o444); err != nil {
		t.Fatal(err)
	}
}

// TestWatchCompleteOnlyWhileWatching: a standby believes that every change
// is reported, and so polls only once a TTL, only while its watches are in
// place: while a file stands where the version directory belongs, which it
// cannot watch, it does not, and it watches the directory again once one
// is back, told so by the watch on the parent, when it wakes to read.
func TestWatchCompleteOnlyWhileWatching(t *testing.T) {
	path, _ := heldLocalLease(t, time.Hour)
	dir := path + ".d"
	c := newFileStore(path).Watch(context.Background()).(*fileWatch)
	defer c.Close()
	if !c.line.Leads() || !c.Complete() {
		t.Fatal("the only standby does not lead, or does not watch the directory")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.d.n.c:
	case <-time.After(lineBound):
		t.Fatalf("the removal of the directory was not reported within %v", lineBound)
	}
	// The removal may be reported before the file's creation is: while the
	// directory is missing, the parent's watch reports its return, so the
	// standby counts as watching until it sees the file.
	waitFor(t, "not complete with a file where the directory belongs", func() bool { return !c.Complete() })
	if got := defaultPollInterval(time.Hour, c.Complete()); got != time.Second {
		t.Fatalf("poll interval %v, want 1s", got)
	}
	for len(c.d.n.c) > 0 {
		<-c.d.n.c
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	// The parent's watch reports the directory's return, and the standby,
	// woken, watches it before it reads the lease (Complete, called before
	// every read).
	select {
	case <-c.d.n.c:
	case <-time.After(lineBound):
		t.Fatalf("the return of the directory was not reported within %v", lineBound)
	}
	waitFor(t, "the new directory watched", func() bool { return c.Complete() && dirWatches(dir) == 1 })
}
