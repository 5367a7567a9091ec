//go:build linux

package integration

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// TestResetUnderHolder: the lease's files are deleted by hand ("rm -rf PATH
// PATH.d") while leaserun holds the lease. leaserun must notice at its next
// renewal: it kills its child, logs that the lease's files were removed or
// replaced, exits 76, and writes nothing more (it does not make PATH.d
// again). With a one-shot leaserun taking the lease anew right after the
// reset, the new holder keeps the lease, and the old child does not outlive
// the old holder's next renewal by much.
func TestResetUnderHolder(t *testing.T) {
	const (
		ttl   = 3 * time.Second
		renew = 300 * time.Millisecond
	)
	for _, newHolder := range []bool{false, true} {
		name := "alone"
		if newHolder {
			name = "new holder"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "reset.lease")
			flags := []string{"--lease", path, "--ttl", ttl.String(), "--renew", renew.String()}
			oldLog := filepath.Join(dir, "old.log")
			old := e2eStartLeaserun(t, dir, "old", nil,
				e2eChildEnv(oldLog, e2eEnvHold+"=60s", e2eEnvHeartbeat+"=5ms"), flags...)
			c := e2eWaitChildStart(t, 30*time.Second, oldLog, old)
			death := e2eWatchDeath(t, c.PID)
			// Renewals first, so that the old holder's version number is
			// well above the 1 an acquisition started anew takes: its next
			// renewal must not meet the new holder's chain at the very
			// version it wrote last, which it could not tell from its own
			// (docs/DESIGN.md, "Files removed by hand").
			e2ePoll(t, 30*time.Second, "seven renewals", func() bool {
				return newestVersionOf(path) >= 8
			})

			for _, p := range []string{path, path + ".d"} {
				if err := os.RemoveAll(p); err != nil {
					t.Fatal(err)
				}
			}
			reset := monoNow()

			var nw *e2eProc
			newLog := filepath.Join(dir, "new.log")
			stop := filepath.Join(dir, "stop")
			if newHolder {
				nw = e2eStartLeaserun(t, dir, "new", nil,
					e2eChildEnv(newLog, e2eEnvHold+"=60s", e2eEnvHoldUntil+"="+stop, e2eEnvHeartbeat+"=5ms"), flags...)
			}

			if st := old.Wait(t, 30*time.Second); st != 76 {
				t.Fatalf("the old holder exited %d, want 76; stderr:\n%s", st, old.Stderr())
			}
			if !strings.Contains(old.Stderr(), "removed or replaced by hand") {
				t.Errorf("the old holder's log does not say that the lease's files were removed or replaced:\n%s", old.Stderr())
			}
			if !death.Wait(10 * time.Second) {
				t.Fatalf("the old child (pid %d) still runs 10s after its leaserun exited 76", c.PID)
			}
			c, err := e2eReadChildLog(oldLog)
			if err != nil {
				t.Fatal(err)
			}
			// Its next renewal, plus room for a loaded machine: far less
			// than the 60s the child would run.
			if d := time.Duration(c.Last().Mono - reset); d > renew+5*time.Second {
				t.Errorf("the old child ran on for %v after the reset", d)
			}

			if !newHolder {
				for _, p := range []string{path, path + ".d"} {
					if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s after the old holder lost: %v; want it still gone", p, err)
					}
				}
				return
			}
			nc := e2eWaitChildStart(t, 30*time.Second, newLog, nw)
			if nc.Epoch != 1 {
				t.Errorf("the new holder's epoch is %d, want 1 (the reset deleted both files)", nc.Epoch)
			}
			// The new holder renews on, unharmed by the old one.
			time.Sleep(3 * renew)
			if nw.Exited() {
				t.Fatalf("the new holder exited; stderr:\n%s", nw.Stderr())
			}
			st, err := lease.Read(path)
			if err != nil || st.State != lease.StateHeld || st.Record.InstanceID != nc.Instance {
				t.Fatalf("after the old holder lost: %v %+v, %v; want held by the new holder %s", st.State, st.Record, err, nc.Instance)
			}
			if err := os.WriteFile(stop, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if st := nw.Wait(t, 30*time.Second); st != 0 {
				t.Fatalf("the new holder exited %d, want 0; stderr:\n%s", st, nw.Stderr())
			}
		})
	}
}

// newestVersionOf is the highest version number in path's version
// directory; 0 if there is none.
func newestVersionOf(path string) uint64 {
	entries, _ := os.ReadDir(path + ".d")
	var newest uint64
	for _, e := range entries {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			newest = max(newest, n)
		}
	}
	return newest
}
