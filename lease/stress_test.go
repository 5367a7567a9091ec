//go:build linux

package lease_test

// A multi-process stress test of the lease's safety property: the
// believed-held intervals of any two handles on one lease never overlap.
//
// TestStress and TestStressTwoHosts run leasetest.Race: they re-execute
// the test binary as worker processes that hammer one lease with short
// TTLs and a random mix of behaviours, log every acquisition's interval of
// belief on CLOCK_MONOTONIC, and the parent fails on any overlap, any
// reused InstanceID or epoch, and any epoch that does not increase with
// time (package lease/leasetest has the harness and its own tests).
//
// Each test runs its workers for its duration (default 10s for TestStress,
// 8s for TestStressTwoHosts), stretched up to threefold if too few
// acquisitions were logged by then (a slow disk). Run longer with
// LEASE_STRESS_DURATION (a Go duration, per test), and raise -timeout to
// match:
//
//	LEASE_STRESS_DURATION=5m go test -run 'Stress' -timeout 1h -v ./lease/
//
// LEASE_STRESS_WORKERS sets the number of worker processes (default 8) and
// LEASE_STRESS_SEED the random seed (logged by every run).

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/sshfsrig"
	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
)

const (
	stressDurationEnv = "LEASE_STRESS_DURATION" // overrides each test's default duration
	stressWorkersEnv  = "LEASE_STRESS_WORKERS"  // overrides the number of workers
	stressSeedEnv     = "LEASE_STRESS_SEED"     // overrides the random seed
)

// stressDuration is def, or LEASE_STRESS_DURATION if set (or a short run
// under -short).
func stressDuration(t *testing.T, def time.Duration) time.Duration {
	if s := os.Getenv(stressDurationEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive Go duration", stressDurationEnv, s)
		}
		return d
	}
	if testing.Short() {
		return 3 * time.Second
	}
	return def
}

func stressWorkers(t *testing.T, def int) int {
	if s := os.Getenv(stressWorkersEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("%s=%q: want a number >= 2", stressWorkersEnv, s)
		}
		return n
	}
	return def
}

// openFiles opens the file lease at location.
func openFiles(location string) (lease.Store, error) { return lease.Files(location), nil }

// stressSeed is LEASE_STRESS_SEED, or 0 for a seed drawn by the run.
func stressSeed(t *testing.T) uint64 {
	s := os.Getenv(stressSeedEnv)
	if s == "" {
		return 0
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", stressSeedEnv, s, err)
	}
	return seed
}

// TestStress: 8 processes on one lease with TTLs of 50-200ms.
func TestStress(t *testing.T) {
	leasetest.Race(t, leasetest.RaceConfig{
		Open:            openFiles,
		Locations:       []string{filepath.Join(t.TempDir(), "lease")},
		Workers:         stressWorkers(t, 8),
		Processes:       true,
		Duration:        stressDuration(t, 10*time.Second),
		TTLMin:          50 * time.Millisecond,
		TTLMax:          200 * time.Millisecond,
		MinAcquisitions: 50,
		Seed:            stressSeed(t),
	})
}

// TestStressTwoHosts: the same, with half the workers reaching the lease
// through one sshfs mount and half through another, like two hosts sharing a
// network filesystem whose kernel locks they do not share; the second host
// caches failed lookups for a moment (sshfsrig.NegativeCache), so that a
// version it lists can fail to open. TTLs leave room for sshfs latency.
func TestStressTwoHosts(t *testing.T) {
	cfg := leasetest.RaceConfig{
		Open:            openFiles,
		Workers:         stressWorkers(t, 8),
		Processes:       true,
		Duration:        stressDuration(t, 8*time.Second),
		TTLMin:          150 * time.Millisecond,
		TTLMax:          500 * time.Millisecond,
		MinAcquisitions: 25,
		Seed:            stressSeed(t),
	}
	if !leasetest.RaceWorker() { // a worker uses the parent's mounts
		rig := sshfsrig.StartHosts(t, "", sshfsrig.NegativeCache)
		cfg.Locations = []string{
			filepath.Join(rig.Mounts[0].Path, "lease"),
			filepath.Join(rig.Mounts[1].Path, "lease"),
		}
	}
	leasetest.Race(t, cfg)
}

// TestStressTwoHostsRacingAcquire: two hosts race to acquire one free (or
// just released) lease, 100 times. Exactly one must win and the other must
// get ErrHeld: losing the compare-and-swap is not an I/O error, even on the
// host that caches failed lookups (sshfsrig.NegativeCache).
func TestStressTwoHostsRacingAcquire(t *testing.T) {
	rig := sshfsrig.StartHosts(t, "", sshfsrig.NegativeCache)
	for round := range 100 {
		var (
			wg   sync.WaitGroup
			ls   [2]*lease.Lease
			errs [2]error
		)
		for m := range ls {
			wg.Go(func() {
				ls[m], errs[m] = lease.Acquire(filepath.Join(rig.Mounts[m].Path, "lease"), time.Minute)
			})
		}
		wg.Wait()
		won := 0
		for m, l := range ls {
			switch {
			case l != nil:
				won++
				if err := l.Release(); err != nil {
					t.Fatalf("round %d: Release through mount %d: %v", round, m, err)
				}
			case !errors.Is(errs[m], lease.ErrHeld):
				t.Errorf("round %d: Acquire through mount %d lost the race with an error that is not ErrHeld: %v", round, m, errs[m])
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d winners, want 1 (errors %v)", round, won, errs)
		}
		if t.Failed() {
			return
		}
	}
}
