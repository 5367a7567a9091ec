//go:build linux

package lease_test

// A multi-process stress test of the lease's safety property: the
// believed-held intervals of any two handles on one lease never overlap.
//
// TestStress and TestStressTwoHosts re-execute the test binary as worker
// processes (TestStressWorker, a no-op unless LEASE_STRESS_WORKER=1) that
// hammer one lease with short TTLs and a random mix of behaviours. Every
// worker logs, for every acquisition, an interval that is certainly inside
// the handle's belief, timed on CLOCK_MONOTONIC (one clock for the whole
// machine, so intervals of different processes compare). The parent merges
// the logs and checkStressIntervals fails on any overlap, any reused
// InstanceID or epoch, and any epoch that does not increase with time.
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
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/sshfsrig"
	"github.com/leaserun/leaserun/lease"
)

const (
	stressWorkerEnv   = "LEASE_STRESS_WORKER"   // "1" in a worker process
	stressConfigEnv   = "LEASE_STRESS_CONFIG"   // the worker's stressWorkerConfig, as JSON
	stressDurationEnv = "LEASE_STRESS_DURATION" // overrides each test's default duration
	stressWorkersEnv  = "LEASE_STRESS_WORKERS"  // overrides the number of workers
	stressSeedEnv     = "LEASE_STRESS_SEED"     // overrides the random seed
)

// stressMono reads CLOCK_MONOTONIC, in nanoseconds. Unlike time.Now's
// monotonic reading (relative to the process start), it is comparable
// between processes on one machine.
func stressMono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// stressInterval is one acquisition as a worker logged it.
type stressInterval struct {
	Worker     int    `json:"worker"`
	Path       string `json:"path"`
	InstanceID string `json:"instance_id"`
	Epoch      uint64 `json:"epoch"`
	// Start is a CLOCK_MONOTONIC reading taken right after Acquire or Wait
	// returned the handle.
	Start int64 `json:"start"`
	// End is the latest reading taken before a call of Expired that then
	// returned false. Confirmed is false when no such call happened (the
	// very first Expired returned true): the acquisition then has no
	// interval certain to lie inside its belief.
	End       int64 `json:"end"`
	Confirmed bool  `json:"confirmed"`

	Via       string        `json:"via"`       // acquire | wait
	Behaviour string        `json:"behaviour"` // short | renewed | renewed-overrun | overrun | deadline
	TTL       time.Duration `json:"ttl"`
	Renewals  int           `json:"renewals"` // successful Renews
	// EndedBy is what ended the belief: released, lapsed (Expired turned
	// true) or lost (Renew returned ErrLost).
	EndedBy string `json:"ended_by"`
	// Freed: Release returned nil, so the lease was left released (not
	// taken over) for the next acquisition.
	Freed bool `json:"freed"`
}

// stressSummary is a worker's counts, written as its last line.
type stressSummary struct {
	Worker       int `json:"worker"`
	Acquisitions int `json:"acquisitions"`
	ViaAcquire   int `json:"via_acquire"`
	ViaWait      int `json:"via_wait"`
	Held         int `json:"held"`          // Acquire returned ErrHeld
	WaitTimeouts int `json:"wait_timeouts"` // Wait's context ended
	Renewals     int `json:"renewals"`
	RenewLost    int `json:"renew_lost"` // Renew returned ErrLost
	Releases     int `json:"releases"`   // Release returned nil
	ReleaseLost  int `json:"release_lost"`
	Dropped      int `json:"dropped"` // handles abandoned after they lapsed, never released
	Unconfirmed  int `json:"unconfirmed"`
	// SlowAcquisitions: Acquire or Wait failed because its write took
	// longer than the TTL.
	SlowAcquisitions int `json:"slow_acquisitions"`
	// The slowest successful one-shot Acquire and the slowest Renew: what
	// the TTLs must leave room for.
	MaxAcquire time.Duration `json:"max_acquire"`
	MaxRenew   time.Duration `json:"max_renew"`
}

func (s *stressSummary) add(o stressSummary) {
	s.Acquisitions += o.Acquisitions
	s.ViaAcquire += o.ViaAcquire
	s.ViaWait += o.ViaWait
	s.Held += o.Held
	s.WaitTimeouts += o.WaitTimeouts
	s.Renewals += o.Renewals
	s.RenewLost += o.RenewLost
	s.Releases += o.Releases
	s.ReleaseLost += o.ReleaseLost
	s.Dropped += o.Dropped
	s.Unconfirmed += o.Unconfirmed
	s.SlowAcquisitions += o.SlowAcquisitions
	s.MaxAcquire = max(s.MaxAcquire, o.MaxAcquire)
	s.MaxRenew = max(s.MaxRenew, o.MaxRenew)
}

// stressLine is one line of a worker's log.
type stressLine struct {
	Interval *stressInterval `json:"interval,omitempty"`
	Summary  *stressSummary  `json:"summary,omitempty"`
}

// stressProblem is one violation found by checkStressIntervals.
type stressProblem struct {
	Kind string // overlap | duplicate-instance | duplicate-epoch | epoch-order | malformed
	Msg  string
}

func (p stressProblem) String() string { return p.Kind + ": " + p.Msg }

func (iv *stressInterval) String() string {
	return fmt.Sprintf("{worker %d %s epoch %d [%d, %d] %s %s ttl %v renewals %d ended %s path %s}",
		iv.Worker, iv.InstanceID, iv.Epoch, iv.Start, iv.End, iv.Via, iv.Behaviour, iv.TTL, iv.Renewals, iv.EndedBy, iv.Path)
}

// checkStressIntervals checks the merged intervals of all workers:
//   - no two confirmed intervals overlap (sharing an instant counts);
//   - no InstanceID and no epoch is handed out twice (all acquisitions);
//   - epochs strictly increase in the order of the confirmed intervals'
//     starts.
//
// Unconfirmed acquisitions are left out of the time-based checks: their
// start reading may postdate the end of their belief, and so a successor's
// start.
func checkStressIntervals(ivs []stressInterval) []stressProblem {
	var probs []stressProblem
	add := func(kind, format string, args ...any) {
		probs = append(probs, stressProblem{kind, fmt.Sprintf(format, args...)})
	}

	ids := map[string]*stressInterval{}
	epochs := map[uint64]*stressInterval{}
	var confirmed []*stressInterval
	for i := range ivs {
		iv := &ivs[i]
		if prev, ok := ids[iv.InstanceID]; ok {
			add("duplicate-instance", "%s and %s", prev, iv)
		}
		ids[iv.InstanceID] = iv
		if prev, ok := epochs[iv.Epoch]; ok {
			add("duplicate-epoch", "%s and %s", prev, iv)
		}
		epochs[iv.Epoch] = iv
		if !iv.Confirmed {
			continue
		}
		if iv.End < iv.Start {
			add("malformed", "confirmed interval ends before it starts: %s", iv)
			continue
		}
		confirmed = append(confirmed, iv)
	}

	slices.SortStableFunc(confirmed, func(a, b *stressInterval) int {
		if a.Start != b.Start {
			return cmp.Compare(a.Start, b.Start)
		}
		return cmp.Compare(a.End, b.End)
	})
	var reach *stressInterval // the interval reaching furthest so far
	for i, iv := range confirmed {
		if reach != nil && iv.Start <= reach.End {
			add("overlap", "%s overlaps %s by %v", iv, reach, time.Duration(min(reach.End, iv.End)-iv.Start))
		}
		if i > 0 && iv.Epoch <= confirmed[i-1].Epoch {
			add("epoch-order", "%s starts after %s", iv, confirmed[i-1])
		}
		if reach == nil || iv.End > reach.End {
			reach = iv
		}
	}
	return probs
}

// stressConfig is one run of the harness.
type stressConfig struct {
	// Paths are the lease paths; worker i uses Paths[i%len(Paths)]. They
	// must name one lease (through different mounts, say) for the run to
	// be safe.
	Paths   []string
	Workers int
	// Duration is how long the workers run, at least. The run goes on
	// (up to stressMaxStretch times Duration) until the workers logged
	// MinAcquisitions confirmed intervals, so that a slow disk stretches
	// it rather than failing it.
	Duration       time.Duration
	TTLMin, TTLMax time.Duration
	// MinAcquisitions is how many confirmed acquisitions the run must
	// make not to pass vacuously.
	MinAcquisitions int
}

// stressMaxStretch bounds how far a run is stretched to make its
// MinAcquisitions.
const stressMaxStretch = 3

// stressWorkerConfig is what the parent hands a worker, as JSON in
// LEASE_STRESS_CONFIG.
type stressWorkerConfig struct {
	Worker int    `json:"worker"`
	Path   string `json:"path"`
	Log    string `json:"log"`
	// Stop is a file the parent creates to end the run: the worker starts
	// no new acquisition after it appears, or after HardStop
	// (CLOCK_MONOTONIC), whichever is first.
	Stop     string        `json:"stop"`
	HardStop int64         `json:"hard_stop"`
	TTLMin   time.Duration `json:"ttl_min"`
	TTLMax   time.Duration `json:"ttl_max"`
	Seed     uint64        `json:"seed"`
}

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

// runStress runs the harness and fails t on any safety violation, any
// worker failure, or too few acquisitions.
func runStress(t *testing.T, cfg stressConfig) {
	t.Helper()
	start := time.Now()
	ivs, sums := runStressWorkers(t, cfg)
	if t.Failed() {
		return
	}
	elapsed := time.Since(start)

	var total stressSummary
	for _, s := range sums {
		total.add(s)
	}
	if total.Acquisitions != len(ivs) {
		t.Errorf("workers counted %d acquisitions but logged %d intervals", total.Acquisitions, len(ivs))
	}
	t.Logf("%d workers, %v, ttl %v-%v, paths %q: %d acquisitions (%d by Acquire, %d by Wait; %d unconfirmed), %d takeovers after expiry, %d renewals, %d ErrLost from Renew, %d releases, %d ErrLost from Release, %d lapsed handles dropped, %d ErrHeld from Acquire, %d Wait timeouts, %d acquisitions undone for outlasting the TTL, %d epoch gaps, max epoch %d; slowest Acquire %v, slowest Renew %v; acquisitions per path %v",
		cfg.Workers, elapsed.Round(time.Millisecond), cfg.TTLMin, cfg.TTLMax, cfg.Paths,
		total.Acquisitions, total.ViaAcquire, total.ViaWait, total.Unconfirmed,
		stressTakeovers(ivs), total.Renewals, total.RenewLost, total.Releases, total.ReleaseLost,
		total.Dropped, total.Held, total.WaitTimeouts, total.SlowAcquisitions, stressEpochGaps(ivs), stressMaxEpoch(ivs),
		total.MaxAcquire.Round(time.Microsecond), total.MaxRenew.Round(time.Microsecond), stressPerPath(cfg.Paths, ivs))

	probs := checkStressIntervals(ivs)
	for i, p := range probs {
		if i == 20 {
			t.Errorf("... and %d more problems", len(probs)-i)
			break
		}
		t.Errorf("safety violation: %s", p)
	}
	if len(probs) > 0 {
		stressDumpAround(t, ivs, probs)
	}
	if n := len(ivs) - total.Unconfirmed; n < cfg.MinAcquisitions {
		t.Errorf("only %d confirmed acquisitions, want at least %d: the run proves too little", n, cfg.MinAcquisitions)
	}
}

// stressDumpAround logs the intervals of the first overlap in start order
// with their neighbours, to help reading a failure.
func stressDumpAround(t *testing.T, ivs []stressInterval, probs []stressProblem) {
	sorted := slices.Clone(ivs)
	slices.SortFunc(sorted, func(a, b stressInterval) int { return cmp.Compare(a.Start, b.Start) })
	for _, p := range probs {
		if p.Kind != "overlap" && p.Kind != "epoch-order" {
			continue
		}
		for i := range sorted {
			if strings.Contains(p.Msg, sorted[i].InstanceID) {
				lo, hi := max(0, i-3), min(len(sorted), i+4)
				for j := lo; j < hi; j++ {
					t.Logf("  %s", &sorted[j])
				}
				return
			}
		}
	}
}

// stressTakeovers counts acquisitions whose predecessor (the epoch before)
// did not leave the lease released: it lapsed, or lost a renewal, and the
// next holder took the lease over.
func stressTakeovers(ivs []stressInterval) int {
	byEpoch := map[uint64]*stressInterval{}
	for i := range ivs {
		byEpoch[ivs[i].Epoch] = &ivs[i]
	}
	n := 0
	for _, iv := range ivs {
		if prev, ok := byEpoch[iv.Epoch-1]; ok && !prev.Freed {
			n++
		}
	}
	return n
}

func stressPerPath(paths []string, ivs []stressInterval) []int {
	n := make([]int, len(paths))
	for _, iv := range ivs {
		n[slices.Index(paths, iv.Path)]++
	}
	return n
}

// stressEpochGaps counts epochs below the highest that no logged
// acquisition had (an acquisition undone inside Acquire leaves one).
func stressEpochGaps(ivs []stressInterval) int {
	return int(stressMaxEpoch(ivs)) - len(ivs)
}

func stressMaxEpoch(ivs []stressInterval) uint64 {
	var m uint64
	for _, iv := range ivs {
		m = max(m, iv.Epoch)
	}
	return m
}

// runStressWorkers starts cfg.Workers worker processes, waits for them, and
// returns what they logged. A worker that fails, or exits without its
// summary, fails t with its output.
func runStressWorkers(t *testing.T, cfg stressConfig) ([]stressInterval, []stressSummary) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(stressSeedEnv); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", stressSeedEnv, s, err)
		}
	}
	t.Logf("%s=%d", stressSeedEnv, seed)

	logDir := t.TempDir()
	stop := filepath.Join(logDir, "stop")
	start := stressMono()
	hardStop := start + stressMaxStretch*cfg.Duration.Nanoseconds()
	// A worker stops within about a TTL of HardStop at the latest;
	// anything much later is hung. Its own -test.timeout makes it dump its
	// goroutines first.
	workerTimeout := stressMaxStretch*cfg.Duration + 60*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), workerTimeout+30*time.Second)
	defer cancel()

	type proc struct {
		cfg            stressWorkerConfig
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
		err            error
	}
	procs := make([]*proc, cfg.Workers)
	for i := range procs {
		p := &proc{cfg: stressWorkerConfig{
			Worker:   i,
			Path:     cfg.Paths[i%len(cfg.Paths)],
			Log:      filepath.Join(logDir, fmt.Sprintf("worker%d.jsonl", i)),
			Stop:     stop,
			HardStop: hardStop,
			TTLMin:   cfg.TTLMin,
			TTLMax:   cfg.TTLMax,
			Seed:     seed + uint64(i),
		}}
		conf, err := json.Marshal(p.cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.CommandContext(ctx, exe,
			"-test.run=^TestStressWorker$", "-test.count=1",
			"-test.timeout="+workerTimeout.String())
		p.cmd.Env = append(os.Environ(), stressWorkerEnv+"=1", stressConfigEnv+"="+string(conf))
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("starting worker %d: %v", i, err)
		}
		procs[i] = p
	}
	var (
		wg        sync.WaitGroup
		firstExit sync.Once
		anyExited = make(chan struct{})
		allExited = make(chan struct{})
	)
	for _, p := range procs {
		wg.Go(func() {
			p.err = p.cmd.Wait()
			firstExit.Do(func() { close(anyExited) })
		})
	}
	go func() { wg.Wait(); close(allExited) }()

	// Stop the workers once Duration is over and they logged enough, or
	// once the run cannot be stretched further, or once one of them
	// exited: they only exit on their own when they fail.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-anyExited:
			break wait
		case <-tick.C:
		}
		now := stressMono()
		if now < start+cfg.Duration.Nanoseconds() {
			continue
		}
		if now >= hardStop || stressConfirmedSoFar(procs[0].cfg.Log, len(procs)) >= cfg.MinAcquisitions {
			break
		}
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Errorf("stopping the workers: %v", err)
	}
	<-allExited

	var ivs []stressInterval
	var sums []stressSummary
	for _, p := range procs {
		output := func() string {
			return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", p.stdout.String(), p.stderr.String())
		}
		if p.err != nil {
			t.Errorf("worker %d (%s): %v\n%s", p.cfg.Worker, p.cfg.Path, p.err, output())
			continue
		}
		wivs, sum, err := readStressLog(p.cfg.Log)
		if err != nil {
			t.Errorf("worker %d (%s): %v\n%s", p.cfg.Worker, p.cfg.Path, err, output())
			continue
		}
		ivs = append(ivs, wivs...)
		sums = append(sums, sum)
	}
	return ivs, sums
}

// stressConfirmedSoFar counts the confirmed intervals that the n workers
// logged so far; log0 is worker 0's log, in the same directory as the rest.
func stressConfirmedSoFar(log0 string, n int) int {
	count := 0
	for i := range n {
		data, _ := os.ReadFile(filepath.Join(filepath.Dir(log0), fmt.Sprintf("worker%d.jsonl", i)))
		count += bytes.Count(data, []byte(`"confirmed":true`))
	}
	return count
}

func readStressLog(name string) ([]stressInterval, stressSummary, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, stressSummary{}, fmt.Errorf("no log (did -test.run match TestStressWorker?): %w", err)
	}
	defer f.Close()
	var ivs []stressInterval
	var sum *stressSummary
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line stressLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, stressSummary{}, fmt.Errorf("%s: bad line %q: %w", name, sc.Text(), err)
		}
		switch {
		case line.Interval != nil:
			ivs = append(ivs, *line.Interval)
		case line.Summary != nil:
			sum = line.Summary
		}
	}
	if err := sc.Err(); err != nil {
		return nil, stressSummary{}, err
	}
	if sum == nil {
		return nil, stressSummary{}, fmt.Errorf("%s: no summary line: the worker did not finish", name)
	}
	return ivs, *sum, nil
}

// TestStress: 8 processes on one lease with TTLs of 50-200ms.
func TestStress(t *testing.T) {
	runStress(t, stressConfig{
		Paths:           []string{filepath.Join(t.TempDir(), "lease")},
		Workers:         stressWorkers(t, 8),
		Duration:        stressDuration(t, 10*time.Second),
		TTLMin:          50 * time.Millisecond,
		TTLMax:          200 * time.Millisecond,
		MinAcquisitions: 50,
	})
}

// TestStressTwoHosts: the same, with half the workers reaching the lease
// through one sshfs mount and half through another, like two hosts sharing a
// network filesystem whose kernel locks they do not share; the second host
// caches failed lookups for a moment (sshfsrig.NegativeCache), so that a
// version it lists can fail to open. TTLs leave room for sshfs latency.
func TestStressTwoHosts(t *testing.T) {
	rig := sshfsrig.StartHosts(t, "", sshfsrig.NegativeCache)
	runStress(t, stressConfig{
		Paths: []string{
			filepath.Join(rig.Mounts[0].Path, "lease"),
			filepath.Join(rig.Mounts[1].Path, "lease"),
		},
		Workers:         stressWorkers(t, 8),
		Duration:        stressDuration(t, 8*time.Second),
		TTLMin:          150 * time.Millisecond,
		TTLMax:          500 * time.Millisecond,
		MinAcquisitions: 25,
	})
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

// TestStressChecker proves the checker can fail: it must catch each kind of
// violation, and accept a clean history.
func TestStressChecker(t *testing.T) {
	iv := func(id string, epoch uint64, start, end int64) stressInterval {
		return stressInterval{InstanceID: id, Epoch: epoch, Start: start, End: end, Confirmed: true}
	}
	unconfirmed := func(id string, epoch uint64, start int64) stressInterval {
		return stressInterval{InstanceID: id, Epoch: epoch, Start: start}
	}
	tests := []struct {
		name string
		ivs  []stressInterval
		want []string // kinds, in any order; nil for none
	}{
		{"clean", []stressInterval{iv("c", 3, 30, 39), iv("a", 1, 10, 19), iv("b", 2, 20, 29)}, nil},
		{"clean with unconfirmed out of order", []stressInterval{
			iv("a", 1, 10, 19), unconfirmed("b", 2, 35), iv("c", 3, 30, 39), iv("d", 4, 40, 40),
		}, nil},
		{"empty", nil, nil},
		{"overlap", []stressInterval{iv("a", 1, 10, 20), iv("b", 2, 15, 30)}, []string{"overlap"}},
		{"touching is overlap", []stressInterval{iv("a", 1, 10, 20), iv("b", 2, 20, 30)}, []string{"overlap"}},
		{"contained", []stressInterval{iv("a", 1, 10, 100), iv("b", 2, 20, 30), iv("c", 3, 40, 50)}, []string{"overlap", "overlap"}},
		{"duplicate instance", []stressInterval{iv("a", 1, 10, 19), iv("a", 2, 20, 29)}, []string{"duplicate-instance"}},
		{"duplicate instance unconfirmed", []stressInterval{iv("a", 1, 10, 19), unconfirmed("a", 2, 20)}, []string{"duplicate-instance"}},
		{"epoch regresses", []stressInterval{iv("a", 2, 10, 19), iv("b", 1, 20, 29)}, []string{"epoch-order"}},
		{"epoch repeats", []stressInterval{iv("a", 1, 10, 19), iv("b", 1, 20, 29)}, []string{"duplicate-epoch", "epoch-order"}},
		{"epoch repeats unconfirmed", []stressInterval{iv("a", 1, 10, 19), unconfirmed("b", 1, 5)}, []string{"duplicate-epoch"}},
		{"malformed", []stressInterval{iv("a", 1, 19, 10)}, []string{"malformed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range checkStressIntervals(tt.ivs) {
				got = append(got, p.Kind)
				t.Logf("%s", p)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("problems %q, want %q", got, want)
			}
		})
	}
}

// TestStressHarnessCatchesSplitBrain proves the whole harness, timing
// included, can fail: two workers on two different lease files each believe
// they hold "the" lease, and the checker must see their intervals overlap.
func TestStressHarnessCatchesSplitBrain(t *testing.T) {
	dir := t.TempDir()
	ivs, _ := runStressWorkers(t, stressConfig{
		Paths:           []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")},
		Workers:         2,
		Duration:        500 * time.Millisecond,
		TTLMin:          50 * time.Millisecond,
		TTLMax:          200 * time.Millisecond,
		MinAcquisitions: 6,
	})
	if t.Failed() {
		return
	}
	overlaps := 0
	for _, p := range checkStressIntervals(ivs) {
		if p.Kind == "overlap" {
			overlaps++
		}
	}
	t.Logf("%d intervals, %d overlaps", len(ivs), overlaps)
	if overlaps == 0 {
		t.Errorf("the checker found no overlap between two workers holding two different leases")
	}
}

// TestStressWorker is the worker process of the stress tests. It does
// nothing unless launched by runStressWorkers.
func TestStressWorker(t *testing.T) {
	if os.Getenv(stressWorkerEnv) != "1" {
		t.Skip("not a stress worker: runs only when re-executed by TestStress* with " + stressWorkerEnv + "=1")
	}
	var cfg stressWorkerConfig
	if err := json.Unmarshal([]byte(os.Getenv(stressConfigEnv)), &cfg); err != nil {
		t.Fatalf("bad %s: %v", stressConfigEnv, err)
	}
	out, err := os.OpenFile(cfg.Log, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w := &stressWorker{
		t:   t,
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Worker))),
		enc: json.NewEncoder(out),
	}
	w.sum.Worker = cfg.Worker
	w.run()
	if err := w.enc.Encode(stressLine{Summary: &w.sum}); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

type stressWorker struct {
	t   *testing.T
	cfg stressWorkerConfig
	rng *rand.Rand
	enc *json.Encoder
	sum stressSummary

	stopped bool
}

// done reports whether the run is over: the parent created the stop file,
// or the hard stop passed.
func (w *stressWorker) done() bool {
	if !w.stopped {
		_, err := os.Stat(w.cfg.Stop)
		w.stopped = err == nil || stressMono() >= w.cfg.HardStop
	}
	return w.stopped
}

// between returns a random duration in [lo, hi].
func (w *stressWorker) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

// ttl draws a TTL log-uniformly from [TTLMin, TTLMax]: short TTLs make
// more acquisitions, long ones leave room for slow writes.
func (w *stressWorker) ttl() time.Duration {
	lo, hi := float64(w.cfg.TTLMin), float64(w.cfg.TTLMax)
	return time.Duration(lo * math.Pow(hi/lo, w.rng.Float64()))
}

// expected fails the worker unless err is one a contended lease may return.
func (w *stressWorker) expected(op string, err error) {
	if err == nil || errors.Is(err, lease.ErrHeld) || errors.Is(err, lease.ErrLost) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	w.t.Fatalf("worker %d: %s: unexpected error: %v", w.cfg.Worker, op, err)
}

func (w *stressWorker) run() {
	for !w.done() {
		ttl := w.ttl()
		var (
			l   *lease.Lease
			err error
			via string
		)
		t0 := time.Now()
		if w.rng.IntN(2) == 0 {
			via = "acquire"
			l, err = lease.Acquire(w.cfg.Path, ttl)
		} else {
			via = "wait"
			ctx, cancel := context.WithTimeout(context.Background(), w.between(ttl/4, 2*ttl))
			l, err = lease.Wait(ctx, w.cfg.Path, ttl)
			cancel()
		}
		if errors.Is(err, lease.ErrLost) {
			// The write of the new record took longer than the TTL, so
			// Acquire gave the lease up again: a slow disk (an fsync
			// stall), not a protocol failure.
			w.sum.SlowAcquisitions++
			continue
		}
		if err != nil {
			w.expected(via, err)
			if errors.Is(err, context.DeadlineExceeded) {
				w.sum.WaitTimeouts++
			} else {
				w.sum.Held++
			}
			time.Sleep(w.between(0, ttl/20))
			continue
		}
		h := &stressHold{l: l}
		h.start = stressMono()
		h.check(h.start) // the start is a reading taken before an Expired call
		if via == "acquire" {
			w.sum.MaxAcquire = max(w.sum.MaxAcquire, time.Since(t0))
		}
		w.sum.Acquisitions++
		if via == "acquire" {
			w.sum.ViaAcquire++
		} else {
			w.sum.ViaWait++
		}
		iv := stressInterval{
			Worker:     w.cfg.Worker,
			Path:       w.cfg.Path,
			InstanceID: l.InstanceID(),
			Epoch:      l.Epoch(),
			Via:        via,
			TTL:        ttl,
		}
		w.hold(h, &iv)
		iv.Start = h.start
		iv.End, iv.Confirmed = h.lastOK, h.confirmed
		if !iv.Confirmed {
			w.sum.Unconfirmed++
		}
		if err := w.enc.Encode(stressLine{Interval: &iv}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// stressHold tracks what a worker knows of one handle's belief.
type stressHold struct {
	l     *lease.Lease
	start int64

	mu        sync.Mutex
	lastOK    int64 // the latest reading taken before an Expired call that returned false
	confirmed bool
	lapsed    bool // Expired returned true
}

// check calls Expired, crediting it with the reading t taken before the
// call, and reports whether the handle still holds.
func (h *stressHold) check(t int64) bool {
	if h.l.Expired() {
		h.mu.Lock()
		h.lapsed = true
		h.mu.Unlock()
		return false
	}
	h.mu.Lock()
	if !h.confirmed || t > h.lastOK {
		h.lastOK, h.confirmed = t, true
	}
	h.mu.Unlock()
	return true
}

// holding takes a reading, then calls Expired.
func (h *stressHold) holding() bool { return h.check(stressMono()) }

// holdUntil keeps checking until the instant until (on the lease's clock)
// or until the handle lapses; it reports whether the handle still holds.
func (h *stressHold) holdUntil(until time.Time) bool {
	for {
		if !h.holding() {
			return false
		}
		d := time.Until(until)
		if d <= 0 {
			return true
		}
		time.Sleep(min(d, time.Millisecond))
	}
}

func (h *stressHold) holdFor(d time.Duration) bool { return h.holdUntil(time.Now().Add(d)) }

// hold runs one random behaviour on a fresh handle and fills in how it
// ended. On return the handle no longer believes it holds.
func (w *stressWorker) hold(h *stressHold, iv *stressInterval) {
	l, ttl := h.l, iv.TTL
	switch r := w.rng.IntN(20); {
	case r < 9: // a short hold, then Release
		iv.Behaviour = "short"
		if h.holdFor(w.between(0, ttl/4)) {
			w.release(h, iv)
			return
		}
	case r < 11: // renewed every ttl/3 while a watchdog goroutine checks Expired
		iv.Behaviour = "renewed"
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			for h.holding() {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		}()
		n := 3 + w.rng.IntN(8)
		lost := false
		for i := 0; i < n && !w.done(); i++ {
			time.Sleep(ttl / 3)
			if lost = w.renew(h, iv); lost {
				break
			}
		}
		close(stop)
		<-stopped
		if lost {
			return
		}
		if w.rng.IntN(4) > 0 && h.holding() {
			w.release(h, iv)
			return
		}
		// Otherwise: stop renewing, like a renewer that died; overrun below.
		iv.Behaviour = "renewed-overrun"
	case r < 15: // renewals timed right at the deadline
		iv.Behaviour = "deadline"
		n := 1 + w.rng.IntN(2)
		for i := 0; i < n && !w.done(); i++ {
			margin := w.between(0, ttl/8)
			if !h.holdUntil(l.Deadline().Add(-margin)) {
				break
			}
			if w.renew(h, iv) {
				return
			}
		}
		if h.holding() {
			w.release(h, iv)
			return
		}
	default: // overrun: never renew
		iv.Behaviour = "overrun"
	}

	// Keep checking until the handle lapses; then drop it, or Release it
	// late, which must not free a successor's lease.
	for h.holding() {
		time.Sleep(time.Millisecond)
	}
	w.lapsed(iv)
	if w.rng.IntN(2) == 0 {
		w.sum.Dropped++
		return
	}
	w.release(h, iv)
}

// lapsed records that the belief ended by Expired turning true.
func (w *stressWorker) lapsed(iv *stressInterval) {
	if iv.EndedBy == "" {
		iv.EndedBy = "lapsed"
	}
}

// renew renews once, checking Expired right before; it reports whether the
// belief ended (lapsed or lost).
func (w *stressWorker) renew(h *stressHold, iv *stressInterval) (ended bool) {
	if !h.holding() {
		w.lapsed(iv)
		return true
	}
	t0 := time.Now()
	err := h.l.Renew()
	w.sum.MaxRenew = max(w.sum.MaxRenew, time.Since(t0))
	switch {
	case err == nil:
		w.sum.Renewals++
		iv.Renewals++
		return false
	case errors.Is(err, lease.ErrLost):
		w.sum.RenewLost++
		if !h.l.Expired() {
			w.t.Fatalf("worker %d: Renew returned %v, yet Expired is false", w.cfg.Worker, err)
		}
		if iv.EndedBy == "" {
			iv.EndedBy = "lost"
		}
		return true
	default:
		w.t.Fatalf("worker %d: Renew: unexpected error: %v", w.cfg.Worker, err)
		return true
	}
}

func (w *stressWorker) release(h *stressHold, iv *stressInterval) {
	err := h.l.Release()
	switch {
	case err == nil:
		w.sum.Releases++
		iv.Freed = true
	case errors.Is(err, lease.ErrLost):
		w.sum.ReleaseLost++
	default:
		w.t.Fatalf("worker %d: Release: unexpected error: %v", w.cfg.Worker, err)
	}
	if !h.l.Expired() {
		w.t.Fatalf("worker %d: Expired is false after Release", w.cfg.Worker)
	}
	if iv.EndedBy == "" {
		iv.EndedBy = "released"
	}
}
