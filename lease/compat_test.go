//go:build linux

package lease_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease/leasetest"
)

// compatCommitEnv names the commit whose package lease TestCompatibility
// races against this one; by default, the last one before the lease was
// kept in a Store (the parent of the commit that added lease/filestore.go).
const compatCommitEnv = "LEASE_COMPAT_COMMIT"

// compatMain is the worker program built against the older package: the
// race workers of package leasetest (worker.go and mono_linux.go, which
// use only what the first package lease had), on a file lease through
// Acquire and Wait.
const compatMain = `package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/leaserun/leaserun/lease"
)

func main() {
	var c workerConfig
	if err := json.Unmarshal([]byte(os.Getenv("LEASETEST_RACE_WORKER")), &c); err != nil {
		fmt.Fprintln(os.Stderr, "bad configuration:", err)
		os.Exit(2)
	}
	runWorkerLog(c,
		func(ttl time.Duration) (*lease.Lease, error) { return lease.Acquire(c.Location, ttl) },
		func(ctx context.Context, ttl time.Duration) (*lease.Lease, error) { return lease.Wait(ctx, c.Location, ttl) },
		func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "worker %d: "+format+"\n", append([]any{c.Worker}, args...)...)
			os.Exit(1)
		})
}
`

// TestCompatibility races processes of this build and of the package as
// it was before the lease was kept in a Store, on one file lease: the
// on-disk protocol is the same, so their believed-held intervals must
// never overlap either. It builds the older package from the repository's
// history (git archive), and skips where there is none.
func TestCompatibility(t *testing.T) {
	if leasetest.RaceWorker() {
		leasetest.Race(t, leasetest.RaceConfig{Open: openFiles})
		return
	}
	if testing.Short() {
		t.Skip("builds an older package lease")
	}
	worker := buildCompatWorker(t)
	res := leasetest.Race(t, leasetest.RaceConfig{
		Open:      openFiles,
		Locations: []string{filepath.Join(t.TempDir(), "lease")},
		Workers:   stressWorkers(t, 8),
		Processes: true,
		Command: func(i int) *exec.Cmd {
			if i%2 == 0 {
				return exec.Command(worker) // the older build
			}
			return nil // this one
		},
		Duration:        stressDuration(t, 6*time.Second),
		TTLMin:          50 * time.Millisecond,
		TTLMax:          200 * time.Millisecond,
		MinAcquisitions: 40,
		Seed:            stressSeed(t),
	})
	var builds [2]int // acquisitions by the older build, and by this one
	for i, n := range res.Acquisitions {
		builds[i%2] += n
	}
	if !t.Failed() && (builds[0] == 0 || builds[1] == 0) {
		t.Errorf("acquisitions by the older build %d, by this one %d: want both to hold the lease", builds[0], builds[1])
	}
}

// buildCompatWorker builds compatMain against the older package lease and
// returns the executable.
func buildCompatWorker(t *testing.T) string {
	t.Helper()
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", args...).Output()
		if err != nil {
			t.Skipf("git %s: %v (no repository history here)", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	root := git("rev-parse", "--show-toplevel")
	commit := os.Getenv(compatCommitEnv)
	if commit == "" {
		added := strings.Fields(git("-C", root, "log", "--no-renames", "--diff-filter=A", "--format=%H", "--", "lease/filestore.go"))
		if len(added) == 0 {
			t.Skip("no commit added lease/filestore.go in this history")
		}
		commit = added[len(added)-1] + "^"
	}
	commit = git("-C", root, "rev-parse", "--verify", commit+"^{commit}")
	t.Logf("the older build: package lease at %s", commit)

	dir := t.TempDir()
	archive := exec.Command("git", "-C", root, "archive", "--format=tar", commit, "go.mod", "go.sum", "lease", "internal")
	extract := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	extract.Stdin = pipe
	var archiveErr, extractErr bytes.Buffer
	archive.Stderr, extract.Stderr = &archiveErr, &extractErr
	if err := extract.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, archiveErr.Bytes())
	}
	if err := extract.Wait(); err != nil {
		t.Fatalf("tar: %v\n%s", err, extractErr.Bytes())
	}
	if src, err := os.ReadFile(filepath.Join(dir, "lease", "store.go")); err == nil && bytes.Contains(src, []byte("type Store interface")) {
		t.Fatalf("the package lease at %s already has a Store: not the older build", commit)
	}

	main := filepath.Join(dir, "compatworker")
	if err := os.Mkdir(main, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(main, "main.go"), []byte(compatMain), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"worker.go", "mono_linux.go"} {
		src, err := os.ReadFile(filepath.Join("leasetest", name))
		if err != nil {
			t.Fatal(err)
		}
		src = bytes.Replace(src, []byte("package leasetest\n"), []byte("package main\n"), 1)
		if err := os.WriteFile(filepath.Join(main, name), src, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "compatworker.exe")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the older package with: %v", err)
	}
	build := exec.Command(gobin, "build", "-o", exe, "./compatworker")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the worker against the older package: %v\n%s", err, out)
	}
	return exe
}
