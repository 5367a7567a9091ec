package leasetest

// Race: many workers run the protocol (Acquire, Wait, Renew, Release) on
// one lease with short TTLs and a random mix of behaviours, and the
// believed-held intervals they log must never overlap.
//
// Every worker logs, for every acquisition, an interval that is certainly
// inside the handle's belief, timed on one clock for all of them
// (CLOCK_MONOTONIC across processes on one machine). checkIntervals fails
// on any overlap, any reused InstanceID or epoch, and any epoch that does
// not increase with time.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// raceWorkerEnv carries, to a worker process, its workerConfig as JSON.
const raceWorkerEnv = "LEASETEST_RACE_WORKER"

// RaceConfig is one run of Race.
type RaceConfig struct {
	// Open returns a store of the register at location. In a race of
	// processes, every worker process opens its own.
	Open func(location string) (lease.Store, error)
	// Locations name the lease; worker i uses Locations[i%len(Locations)].
	// They must all name one register (the same directory through two
	// mounts, say) for the race to be safe.
	Locations []string
	// Workers is how many workers race (default 8).
	Workers int
	// Processes makes the workers OS processes, which re-execute the test
	// binary and run the test that called Race up to its call of Race (on
	// Linux only; elsewhere the race is skipped). Otherwise they are
	// goroutines of this process.
	Processes bool
	// Duration is how long the workers run, at least (default 3s). The
	// run goes on, up to five times as long, until the workers logged
	// MinAcquisitions confirmed acquisitions (default 20), so that a slow
	// store stretches it rather than failing it.
	Duration        time.Duration
	MinAcquisitions int
	// TTLMin and TTLMax bound the workers' TTLs (default 50ms and 200ms):
	// they must leave room for the store's latency.
	TTLMin, TTLMax time.Duration
	// Seed seeds the workers' choices; 0 draws one (it is logged).
	Seed uint64
	// Faults says that the store fails now and then by design: errors other
	// than ErrHeld and ErrLost are then counted, not failures.
	Faults bool
	// Command, if not nil, may give the command that runs worker i of a
	// race of processes instead of the test binary: another build of the
	// worker, such as one against an older package lease. It finds its
	// configuration in the environment, as the test binary does, and must
	// log as the workers of this package do. A nil command runs the test
	// binary.
	Command func(i int) *exec.Cmd
}

// maxStretch bounds how far a run is stretched to make its MinAcquisitions.
const maxStretch = 5

// RaceWorker reports whether this process is a worker process of Race. A
// test that calls Race with Processes set runs again in every worker up
// to its call of Race, which then works as the worker and ignores its
// Locations: setup that a worker must not repeat (mounting a filesystem,
// say) should be skipped when RaceWorker reports true.
func RaceWorker() bool { return os.Getenv(raceWorkerEnv) != "" }

// RaceResult is what a race made.
type RaceResult struct {
	// Acquisitions counts the acquisitions of each worker.
	Acquisitions []int
}

// Race runs cfg's workers on one lease and fails t on any safety
// violation, any worker failure, or too few acquisitions.
func Race(t *testing.T, cfg RaceConfig) RaceResult {
	t.Helper()
	if conf := os.Getenv(raceWorkerEnv); conf != "" {
		runWorkerProcess(t, cfg, conf)
		return RaceResult{}
	}
	if cfg.Processes && !processesSupported {
		t.Skip("a race of processes needs one monotonic clock across processes: Linux only")
	}
	if cfg.Workers == 0 {
		cfg.Workers = 8
	}
	if cfg.Duration == 0 {
		cfg.Duration = 3 * time.Second
	}
	if cfg.MinAcquisitions == 0 {
		cfg.MinAcquisitions = 20
	}
	if cfg.TTLMin == 0 {
		cfg.TTLMin = 50 * time.Millisecond
	}
	if cfg.TTLMax == 0 {
		cfg.TTLMax = max(cfg.TTLMin, 200*time.Millisecond)
	}
	if len(cfg.Locations) == 0 || cfg.Open == nil {
		t.Fatal("leasetest.Race: no Locations or no Open")
	}
	start := time.Now()
	ivs, sums := runWorkers(t, cfg)
	res := RaceResult{Acquisitions: make([]int, cfg.Workers)}
	for _, iv := range ivs {
		if iv.Worker >= 0 && iv.Worker < cfg.Workers {
			res.Acquisitions[iv.Worker]++
		}
	}
	if t.Failed() {
		return res
	}
	elapsed := time.Since(start)

	var total summary
	for _, s := range sums {
		total.add(s)
	}
	if total.Acquisitions != len(ivs) {
		t.Errorf("workers counted %d acquisitions but logged %d intervals", total.Acquisitions, len(ivs))
	}
	kind := "goroutines"
	if cfg.Processes {
		kind = "processes"
	}
	t.Logf("%d worker %s, %v, ttl %v-%v, locations %q: %d acquisitions (%d by Acquire, %d by Wait; %d unconfirmed), %d takeovers after expiry, %d renewals, %d ErrLost from Renew, %d releases, %d ErrLost from Release, %d lapsed handles dropped, %d ErrHeld from Acquire, %d Wait timeouts, %d acquisitions undone for outlasting the TTL, %d injected faults seen, %d epoch gaps, max epoch %d; slowest Acquire %v, slowest Renew %v; acquisitions per location %v",
		cfg.Workers, kind, elapsed.Round(time.Millisecond), cfg.TTLMin, cfg.TTLMax, cfg.Locations,
		total.Acquisitions, total.ViaAcquire, total.ViaWait, total.Unconfirmed,
		takeovers(ivs), total.Renewals, total.RenewLost, total.Releases, total.ReleaseLost,
		total.Dropped, total.Held, total.WaitTimeouts, total.SlowAcquisitions, total.Faults, epochGaps(ivs), maxEpoch(ivs),
		total.MaxAcquire.Round(time.Microsecond), total.MaxRenew.Round(time.Microsecond), perLocation(cfg.Locations, ivs))

	probs := checkIntervals(ivs)
	for i, p := range probs {
		if i == 20 {
			t.Errorf("... and %d more problems", len(probs)-i)
			break
		}
		t.Errorf("safety violation: %s", p)
	}
	if len(probs) > 0 {
		dumpAround(t, ivs, probs)
	}
	if n := len(ivs) - total.Unconfirmed; n < cfg.MinAcquisitions {
		t.Errorf("only %d confirmed acquisitions, want at least %d: the run proves too little", n, cfg.MinAcquisitions)
	}
	t.Logf("acquisitions per worker: %v", res.Acquisitions)
	return res
}

// dumpAround logs the intervals of the first overlap in start order with
// their neighbours, to help reading a failure.
func dumpAround(t *testing.T, ivs []interval, probs []problem) {
	sorted := slices.Clone(ivs)
	slices.SortFunc(sorted, func(a, b interval) int { return cmp.Compare(a.Start, b.Start) })
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

// takeovers counts acquisitions whose predecessor (the epoch before) did
// not leave the lease released: it lapsed, or lost a renewal, and the next
// holder took the lease over.
func takeovers(ivs []interval) int {
	byEpoch := map[uint64]*interval{}
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

func perLocation(locs []string, ivs []interval) []int {
	n := make([]int, len(locs))
	for _, iv := range ivs {
		if i := slices.Index(locs, iv.Location); i >= 0 {
			n[i]++
		}
	}
	return n
}

// epochGaps counts epochs below the highest that no logged acquisition
// had (an acquisition undone inside Acquire leaves one).
func epochGaps(ivs []interval) int {
	return int(maxEpoch(ivs)) - len(ivs)
}

func maxEpoch(ivs []interval) uint64 {
	var m uint64
	for _, iv := range ivs {
		m = max(m, iv.Epoch)
	}
	return m
}

// runWorkers runs the workers and returns what they logged. A worker that
// fails, or ends without its summary, fails t.
func runWorkers(t *testing.T, cfg RaceConfig) ([]interval, []summary) {
	t.Helper()
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", seed)
	start := mono()
	hardStop := start + maxStretch*cfg.Duration.Nanoseconds()
	confs := make([]workerConfig, cfg.Workers)
	for i := range confs {
		confs[i] = workerConfig{
			Test:     t.Name(),
			Worker:   i,
			Location: cfg.Locations[i%len(cfg.Locations)],
			HardStop: hardStop,
			TTLMin:   cfg.TTLMin,
			TTLMax:   cfg.TTLMax,
			Seed:     seed + uint64(i),
			Faults:   cfg.Faults,
		}
	}
	// Stop the workers once Duration is over and they logged enough, or
	// once the run cannot be stretched further, or once one of them
	// ended: they only end on their own when they fail.
	waitRun := func(anyEnded <-chan struct{}, confirmed func() int) {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-anyEnded:
				return
			case <-tick.C:
			}
			now := mono()
			if now < start+cfg.Duration.Nanoseconds() {
				continue
			}
			if now >= hardStop || confirmed() >= cfg.MinAcquisitions {
				return
			}
		}
	}
	if cfg.Processes {
		return runProcesses(t, cfg, confs, waitRun)
	}
	return runGoroutines(t, cfg, confs, waitRun)
}

// runGoroutines runs the workers as goroutines of this process.
func runGoroutines(t *testing.T, cfg RaceConfig, confs []workerConfig, waitRun func(<-chan struct{}, func() int)) ([]interval, []summary) {
	var (
		mu        sync.Mutex
		ivs       []interval
		sums      []summary
		failures  []string
		confirmed int
		stop      atomic.Bool
		wg        sync.WaitGroup
		ended     = make(chan struct{})
		endOnce   sync.Once
	)
	for _, c := range confs {
		st, err := cfg.Open(c.Location)
		if err != nil {
			t.Fatalf("Open(%q): %v", c.Location, err)
		}
		acquire, wait := storeFuncs(st)
		w := &worker{
			cfg:     c,
			acquire: acquire,
			wait:    wait,
			rng:     rand.New(rand.NewPCG(c.Seed, uint64(c.Worker))),
			stop:    stop.Load,
			emit: func(l logLine) {
				mu.Lock()
				defer mu.Unlock()
				if l.Interval != nil {
					ivs = append(ivs, *l.Interval)
					if l.Interval.Confirmed {
						confirmed++
					}
				}
			},
			failf: func(format string, args ...any) {
				mu.Lock()
				failures = append(failures, fmt.Sprintf(format, args...))
				mu.Unlock()
				endOnce.Do(func() { close(ended) })
				runtime.Goexit()
			},
		}
		w.sum.Worker = c.Worker
		wg.Go(func() {
			w.run()
			mu.Lock()
			sums = append(sums, w.sum)
			mu.Unlock()
		})
	}
	waitRun(ended, func() int {
		mu.Lock()
		defer mu.Unlock()
		return confirmed
	})
	stop.Store(true)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	return ivs, sums
}

// runProcesses runs the workers as processes: the test binary re-executed
// to run t (and, through its call of Race, runWorkerProcess).
func runProcesses(t *testing.T, cfg RaceConfig, confs []workerConfig, waitRun func(<-chan struct{}, func() int)) ([]interval, []summary) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	logDir := t.TempDir()
	stop := filepath.Join(logDir, "stop")
	// A worker stops within about a TTL of HardStop at the latest;
	// anything much later is hung. Its own -test.timeout makes it dump its
	// goroutines first.
	workerTimeout := time.Duration(confs[0].HardStop-mono()) + 60*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), workerTimeout+30*time.Second)
	defer cancel()

	type proc struct {
		cfg            workerConfig
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
		err            error
	}
	procs := make([]*proc, len(confs))
	for i, c := range confs {
		c.Log = filepath.Join(logDir, fmt.Sprintf("worker%d.jsonl", i))
		c.Stop = stop
		p := &proc{cfg: c}
		conf, err := json.Marshal(p.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Command != nil {
			p.cmd = cfg.Command(i)
		}
		if p.cmd == nil {
			p.cmd = exec.CommandContext(ctx, exe,
				"-test.run="+runPattern(t.Name()), "-test.count=1",
				"-test.timeout="+workerTimeout.String())
		}
		p.cmd.Env = append(os.Environ(), raceWorkerEnv+"="+string(conf))
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
	)
	for _, p := range procs {
		wg.Go(func() {
			p.err = p.cmd.Wait()
			firstExit.Do(func() { close(anyExited) })
		})
	}
	waitRun(anyExited, func() int {
		count := 0
		for _, p := range procs {
			data, _ := os.ReadFile(p.cfg.Log)
			count += bytes.Count(data, []byte(`"confirmed":true`))
		}
		return count
	})
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Errorf("stopping the workers: %v", err)
	}
	wg.Wait()

	var ivs []interval
	var sums []summary
	for _, p := range procs {
		output := func() string {
			return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", p.stdout.String(), p.stderr.String())
		}
		if p.err != nil {
			t.Errorf("worker %d (%s): %v\n%s", p.cfg.Worker, p.cfg.Location, p.err, output())
			continue
		}
		wivs, sum, err := readLog(p.cfg.Log)
		if err != nil {
			t.Errorf("worker %d (%s): %v\n%s", p.cfg.Worker, p.cfg.Location, err, output())
			continue
		}
		ivs = append(ivs, wivs...)
		sums = append(sums, sum)
	}
	return ivs, sums
}

// runPattern is a -test.run pattern that matches the test named name
// (t.Name(): subtests separated by slashes) and nothing else.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// runWorkerProcess is Race in a worker process.
func runWorkerProcess(t *testing.T, cfg RaceConfig, conf string) {
	var c workerConfig
	if err := json.Unmarshal([]byte(conf), &c); err != nil {
		t.Fatalf("bad %s: %v", raceWorkerEnv, err)
	}
	if c.Test != t.Name() {
		t.Skipf("a worker of %s, not of %s", c.Test, t.Name())
	}
	if cfg.Open == nil {
		t.Fatal("leasetest.Race: no Open")
	}
	st, err := cfg.Open(c.Location)
	if err != nil {
		t.Fatalf("Open(%q): %v", c.Location, err)
	}
	acquire, wait := storeFuncs(st)
	runWorkerLog(c, acquire, wait, t.Fatalf)
}

// storeFuncs are a worker's Acquire and Wait on st.
func storeFuncs(st lease.Store) (func(time.Duration) (*lease.Lease, error), func(context.Context, time.Duration) (*lease.Lease, error)) {
	return func(ttl time.Duration) (*lease.Lease, error) { return lease.AcquireStore(st, ttl) },
		func(ctx context.Context, ttl time.Duration) (*lease.Lease, error) {
			return lease.WaitStore(ctx, st, ttl)
		}
}

func readLog(name string) ([]interval, summary, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, summary{}, fmt.Errorf("no log (did the worker reach its call of Race?): %w", err)
	}
	defer f.Close()
	var ivs []interval
	var sum *summary
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line logLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, summary{}, fmt.Errorf("%s: bad line %q: %w", name, sc.Text(), err)
		}
		switch {
		case line.Interval != nil:
			ivs = append(ivs, *line.Interval)
		case line.Summary != nil:
			sum = line.Summary
		}
	}
	if err := sc.Err(); err != nil {
		return nil, summary{}, err
	}
	if sum == nil {
		return nil, summary{}, fmt.Errorf("%s: no summary line: the worker did not finish", name)
	}
	return ivs, *sum, nil
}
