package lease_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/sshfsrig"
	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
)

// filesConfig is the file store for leasetest: locations are paths in
// directories that New makes under dir(t).
func filesConfig(dir func(t *testing.T) string) leasetest.Config {
	return leasetest.Config{
		New:   func(t *testing.T) string { return filepath.Join(dir(t), "lease") },
		Open:  func(location string) (lease.Store, error) { return lease.Files(location), nil },
		Plant: plantVersion,
	}
}

// plantVersion writes data as the version after the newest, by hand.
func plantVersion(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(path+".d", 0o777); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(path + ".d")
	if err != nil {
		t.Fatal(err)
	}
	var newest uint64
	for _, e := range entries {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			newest = max(newest, n)
		}
	}
	if err := os.WriteFile(filepath.Join(path+".d", strconv.FormatUint(newest+1, 10)), data, 0o444); err != nil {
		t.Fatal(err)
	}
}

// The file store passes the store conformance suite.
func TestFilesConformance(t *testing.T) {
	leasetest.TestStore(t, filesConfig(func(t *testing.T) string { return t.TempDir() }))
}

// The same through sshfs mounts (internal/sshfsrig): each register is
// made through one mount and opened, in turn, through both.
func TestFilesConformanceSSHFS(t *testing.T) {
	var mounts []string
	if !leasetest.RaceWorker() { // a worker opens a location through the parent's mounts
		rig := sshfsrig.Start(t, 2)
		for _, m := range rig.Mounts {
			mounts = append(mounts, m.Path)
		}
	}
	n := 0
	cfg := filesConfig(func(t *testing.T) string {
		n++
		dir, err := os.MkdirTemp(mounts[n%len(mounts)], "conformance-")
		if err != nil {
			t.Fatal(err)
		}
		return dir
	})
	open := cfg.Open
	cfg.Open = func(location string) (lease.Store, error) {
		// The other mount, every other time: a second host.
		n++
		for i, m := range mounts {
			if rel, err := filepath.Rel(m, location); err == nil && !strings.HasPrefix(rel, "..") {
				location = filepath.Join(mounts[(i+n)%len(mounts)], rel)
				break
			}
		}
		return open(location)
	}
	cfg.TTLMin, cfg.TTLMax = 150*time.Millisecond, 500*time.Millisecond
	leasetest.TestStore(t, cfg)
}
