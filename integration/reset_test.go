//go:build linux

package integration

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// TestResetUnderHolder: the lease's files are deleted by hand ("rm -rf PATH
// PATH.d") while leaserun holds the lease. leaserun must notice at its next
// renewal: it kills its child, logs that the lease's files were removed or
// replaced, exits 76, and writes nothing more (it does not make PATH.d
// again). With another leaserun taking the lease anew right after the
// reset, the new holder keeps the lease, and the old child does not outlive
// the old holder's next renewal by much.
func TestResetUnderHolder(t *testing.T) {
	const (
		ttl   = 3 * time.Second
		renew = 300 * time.Millisecond
	)
	for _, tc := range []struct {
		name      string
		newHolder bool
		// apart removes PATH, waits for a renewal to publish it again,
		// and only then removes PATH.d.
		apart bool
	}{
		{"alone", false, false},
		{"new holder", true, false},
		{"new holder, removals apart", true, true},
	} {
		newHolder := tc.newHolder
		t.Run(tc.name, func(t *testing.T) {
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
				// A temp file made while the directory is emptied
				// keeps it from going: remove again, as after rm -rf.
				for tries := 1; ; tries++ {
					err := os.RemoveAll(p)
					if err == nil {
						break
					}
					if tries == 10 || !errors.Is(err, syscall.ENOTEMPTY) {
						t.Fatal(err)
					}
				}
				if tc.apart && p == path {
					e2ePoll(t, 30*time.Second, "a renewal to publish PATH again", func() bool {
						_, err := os.Lstat(path)
						return err == nil
					})
				}
			}
			reset := monoNow()
			// A renewal may have published its record to PATH between
			// the two removals (one in flight, or any with the removals
			// apart); its temp file went with PATH.d, so nothing can
			// publish after them. The lease is then free, as PATH.d
			// says, and an acquisition started anew takes the epoch
			// after the published copy's.
			wantEpoch := uint64(1)
			left, leftErr := os.ReadFile(path)
			if leftErr == nil {
				st, err := lease.Read(path)
				if err != nil || st.State != lease.StateFree || !st.VersionsRemoved {
					t.Fatalf("the lease after the reset: %v %+v, versions removed %v, %v; want free, its versions removed", st.State, st.Record, st.VersionsRemoved, err)
				}
				wantEpoch = st.Published.Epoch + 1
				t.Logf("a renewal published epoch %d to PATH during the reset", st.Published.Epoch)
			} else if tc.apart {
				t.Fatalf("PATH is gone after the reset (%v), though a renewal published it again before PATH.d went", leftErr)
			}

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
				if _, err := os.Lstat(path + ".d"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s.d after the old holder lost: %v; want it still gone", path, err)
				}
				now, err := os.ReadFile(path)
				switch {
				case leftErr != nil && !errors.Is(err, fs.ErrNotExist):
					t.Errorf("%s after the old holder lost: %v; want it still gone", path, err)
				case leftErr == nil && !bytes.Equal(now, left):
					t.Errorf("%s changed after the reset, from %q to %q (%v)", path, left, now, err)
				}
				return
			}
			nc := e2eWaitChildStart(t, 30*time.Second, newLog, nw)
			if nc.Epoch != wantEpoch {
				t.Errorf("the new holder's epoch is %d, want %d", nc.Epoch, wantEpoch)
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
