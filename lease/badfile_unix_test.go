//go:build unix

package lease_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// TestDanglingSymlinkHead: a newest version that is a dangling symlink (not
// something the protocol writes, but a user or tool can) must not hang a
// read, nor be taken for a free lease: no bytes were read, and a name that
// can't be opened is what a client's stale cache shows too. It is an I/O
// error, as a directory there is.
func TestDanglingSymlinkHead(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
	link := filepath.Join(path+".d", "2")
	if err := os.Symlink(filepath.Join(t.TempDir(), "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	type result struct {
		st  lease.Status
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := lease.Read(path, lease.WithClock(clk))
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		if r.err == nil || errors.Is(r.err, lease.ErrHeld) || !strings.Contains(r.err.Error(), link) {
			t.Fatalf("Read = %s, %v; want an I/O error naming %s", r.st.State, r.err, link)
		}
		if l, err := lease.Acquire(path, time.Hour, lease.WithClock(clk)); l != nil || err == nil || errors.Is(err, lease.ErrHeld) {
			t.Fatalf("Acquire = acquired %v, %v; want an I/O error", l != nil, err)
		}
	case <-time.After(10 * time.Second): // a bound on a hang
		t.Error("Read of a lease whose newest version is a dangling symlink did not return within 10s")
		os.Remove(link) // let the spinning Read end
		<-done
	}
}

// TestFIFOsDoNotHang: opening a FIFO for reading waits for a writer, so a
// FIFO (or a symlink to one) where a record belongs must not be opened as
// one: it is unreadable, hence free, whether it is the newest version or
// the published copy that Acquire reads for the epoch.
func TestFIFOsDoNotHang(t *testing.T) {
	for _, at := range []string{"newest version", "symlink to a FIFO", "published copy"} {
		t.Run(at, func(t *testing.T) {
			path := leasePathIn(t)
			clk := clockAt(0)
			fifo := filepath.Join(path+".d", "2")
			switch at {
			case "newest version":
				mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
			case "symlink to a FIFO":
				mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
				fifo = filepath.Join(t.TempDir(), "fifo")
				if err := os.Symlink(fifo, filepath.Join(path+".d", "2")); err != nil {
					t.Fatal(err)
				}
			case "published copy":
				fifo = path
			}
			if err := syscall.Mkfifo(fifo, 0o666); err != nil {
				t.Fatal(err)
			}
			// A Read or Acquire stuck in open(2) returns once a writer
			// comes: be that writer when the test ends.
			t.Cleanup(func() {
				if fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					syscall.Close(fd)
				}
			})

			done := make(chan error, 1)
			go func() {
				st, err := lease.Read(path, lease.WithClock(clk))
				if err == nil && st.State != lease.StateFree {
					err = fmt.Errorf("Read = %s, want free", st.State)
				}
				if err != nil {
					done <- err
					return
				}
				l, err := lease.Acquire(path, time.Hour, lease.WithClock(clk))
				if err == nil && l.Epoch() < 2 && at != "published copy" {
					err = fmt.Errorf("acquired with epoch %d after epoch 1", l.Epoch())
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second): // a bound on a hang
				t.Fatal("Read and Acquire did not return within 10s")
			}
		})
	}
}
