//go:build unix

package lease_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// TestDanglingSymlinkHead: a newest version that is a dangling symlink (not
// something the protocol writes, but a user or tool can) must not hang a
// read: it is unreadable (free) or an error.
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
		if r.err == nil && r.st.State != lease.StateFree {
			t.Fatalf("Read = %s, want free or an error", r.st.State)
		}
		if errors.Is(r.err, lease.ErrHeld) {
			t.Fatalf("Read: %v", r.err)
		}
	case <-time.After(10 * time.Second): // a bound on a hang
		t.Error("Read of a lease whose newest version is a dangling symlink did not return within 10s")
		os.Remove(link) // let the spinning Read end
		<-done
	}
}
