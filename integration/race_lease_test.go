//go:build linux

package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// e2eRaceResult is one leaserun run of a race.
type e2eRaceResult struct {
	id       string
	wait     bool
	status   int
	wantCode int // the status the child was told to exit with
	log      string
	proc     *e2eProc
}

// e2eRace has workers leaserun loops race for one lease for dur, half of
// them standing by (--wait --wait-timeout 1s) and half not. Worker w uses
// leasePaths[w%len(leasePaths)] (several paths: one lease seen through
// several mounts). Each child holds for a random 1-20ms and exits with a
// random status. It checks that every run exited with its child's status or
// 75 (and then ran no child), and that no two children ever ran at once.
func e2eRace(t *testing.T, leasePaths []string, workers int, dur time.Duration) {
	dir := t.TempDir()
	const ttl = 2 * time.Second
	codes := []int{0, 1, 3, 42}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	var (
		mu      sync.Mutex
		results []e2eRaceResult
		wg      sync.WaitGroup
	)
	deadline := time.Now().Add(dur)
	for w := range workers {
		wait := w < workers/2
		path := leasePaths[w%len(leasePaths)]
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				log := filepath.Join(dir, id+".log")
				code := codes[rng.IntN(len(codes))]
				env := e2eChildEnv(log,
					e2eEnvHold+"="+(time.Duration(1+rng.IntN(20))*time.Millisecond).String(),
					e2eEnvExit+"="+fmt.Sprint(code))
				flags := []string{"--lease", path, "--ttl", ttl.String()}
				if wait {
					flags = append(flags, "--wait", "--wait-timeout", "1s")
				}
				p := e2eStartLeaserun(t, dir, id, nil, env, flags...)
				status := p.Wait(t, 30*time.Second)
				mu.Lock()
				results = append(results, e2eRaceResult{id: id, wait: wait, status: status, wantCode: code, log: log, proc: p})
				mu.Unlock()
				if status != 75 {
					// Let the others at the lease now and then; not a
					// synchronisation, just a varied rhythm.
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()

	var ivs []e2eInterval
	ran := map[bool]int{}
	held := map[bool]int{}
	for _, r := range results {
		c, err := e2eReadChildLog(r.log)
		if r.status == 75 {
			held[r.wait]++
			if !os.IsNotExist(err) {
				t.Errorf("%s: leaserun exited 75 but its child ran (log: %v)", r.id, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: leaserun exited %d but its child left no complete log: %v; stderr:\n%s", r.id, r.status, err, r.proc.Stderr())
			continue
		}
		got, ok := c.ExitCode()
		switch {
		case !ok:
			t.Errorf("%s: the child never finished (killed?); leaserun exited %d; stderr:\n%s", r.id, r.status, r.proc.Stderr())
			continue
		case got != r.wantCode:
			t.Errorf("%s: the child logged exit %d, told %d", r.id, got, r.wantCode)
		case r.status != got:
			t.Errorf("%s: leaserun exited %d, want the child's status %d (or 75); stderr:\n%s", r.id, r.status, got, r.proc.Stderr())
		}
		ran[r.wait]++
		ivs = append(ivs, e2eInterval{ID: r.id, Start: c.Start.Mono, End: c.End.Mono, Epoch: c.Epoch})
	}
	t.Logf("%d runs: children ran %d times under --wait and %d without; 75 for %d waits (timeout) and %d one-shots",
		len(results), ran[true], ran[false], held[true], held[false])
	if err := e2eCheckNoOverlap(ivs); err != nil {
		t.Errorf("children ran at the same time:\n%v", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	// A race in which hardly anyone ran proves nothing.
	if len(ivs) < 10 {
		t.Errorf("only %d children ran in %v", len(ivs), dur)
	}
}

// TestRaceOneLease: eight leaserun loops, four standing by and four not,
// race for one lease on a local filesystem for about 8s. Whoever gets it
// runs a child for a few milliseconds. No two children ever run at once,
// their epochs increase in the order they ran, and every leaserun exits
// with its child's status or 75.
func TestRaceOneLease(t *testing.T) {
	e2eRace(t, []string{filepath.Join(t.TempDir(), "race.lease")}, 8, 8*time.Second)
}

// TestRaceCheckerCatchesOverlap shows the checker of the race tests can
// fail: overlapping children, nested ones, and epochs that go backwards.
func TestRaceCheckerCatchesOverlap(t *testing.T) {
	for _, tc := range []struct {
		name string
		ivs  []e2eInterval
		want string // "" means the input is fine
	}{
		{"disjoint", []e2eInterval{{"a", 10, 20, 1}, {"b", 21, 30, 2}, {"c", 40, 41, 5}}, ""},
		{"unsorted", []e2eInterval{{"c", 40, 41, 5}, {"a", 10, 20, 1}, {"b", 21, 30, 2}}, ""},
		{"overlap", []e2eInterval{{"a", 10, 20, 1}, {"b", 15, 30, 2}}, "overlap: a ran [10, 20] and b started at 15"},
		{"touching", []e2eInterval{{"a", 10, 20, 1}, {"b", 20, 30, 2}}, "overlap"},
		{"nested", []e2eInterval{{"a", 10, 100, 1}, {"b", 20, 30, 2}, {"c", 40, 50, 3}},
			"overlap: a ran [10, 100] and c started at 40"},
		{"same start", []e2eInterval{{"a", 10, 20, 1}, {"b", 10, 20, 2}}, "overlap"},
		{"epoch back", []e2eInterval{{"a", 10, 20, 2}, {"b", 21, 30, 2}}, "epoch did not increase"},
		{"inverted", []e2eInterval{{"a", 20, 10, 1}}, "ends (10) before it starts (20)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e2eCheckNoOverlap(tc.ivs)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected failure: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("passed; want a failure containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %q; want it to contain %q", err, tc.want)
			}
		})
	}
}
