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
	"errors"
	"fmt"
	"math"
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
	// run goes on, up to three times as long, until the workers logged
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
}

// workerConfig is what Race hands a worker.
type workerConfig struct {
	Test     string `json:"test"` // the test that started the worker
	Worker   int    `json:"worker"`
	Location string `json:"location"`
	Log      string `json:"log"`
	// Stop is a file the parent creates to end the run: the worker starts
	// no new acquisition after it appears, or after HardStop (mono),
	// whichever is first.
	Stop     string        `json:"stop"`
	HardStop int64         `json:"hard_stop"`
	TTLMin   time.Duration `json:"ttl_min"`
	TTLMax   time.Duration `json:"ttl_max"`
	Seed     uint64        `json:"seed"`
	Faults   bool          `json:"faults"`
}

// maxStretch bounds how far a run is stretched to make its MinAcquisitions.
const maxStretch = 3

// RaceWorker reports whether this process is a worker process of Race. A
// test that calls Race with Processes set runs again in every worker up
// to its call of Race, which then works as the worker and ignores its
// Locations: setup that a worker must not repeat (mounting a filesystem,
// say) should be skipped when RaceWorker reports true.
func RaceWorker() bool { return os.Getenv(raceWorkerEnv) != "" }

// Race runs cfg's workers on one lease and fails t on any safety
// violation, any worker failure, or too few acquisitions.
func Race(t *testing.T, cfg RaceConfig) {
	t.Helper()
	if conf := os.Getenv(raceWorkerEnv); conf != "" {
		runWorkerProcess(t, cfg, conf)
		return
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
	if t.Failed() {
		return
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
		return runProcesses(t, confs, waitRun)
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
		w := &worker{
			cfg:  c,
			st:   st,
			rng:  rand.New(rand.NewPCG(c.Seed, uint64(c.Worker))),
			stop: stop.Load,
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
func runProcesses(t *testing.T, confs []workerConfig, waitRun func(<-chan struct{}, func() int)) ([]interval, []summary) {
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
		p.cmd = exec.CommandContext(ctx, exe,
			"-test.run="+runPattern(t.Name()), "-test.count=1",
			"-test.timeout="+workerTimeout.String())
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
	out, err := os.OpenFile(c.Log, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	enc := json.NewEncoder(out)
	w := &worker{
		cfg: c,
		st:  st,
		rng: rand.New(rand.NewPCG(c.Seed, uint64(c.Worker))),
		stop: func() bool {
			_, err := os.Stat(c.Stop)
			return err == nil
		},
		emit: func(l logLine) {
			if err := enc.Encode(l); err != nil {
				t.Fatal(err)
			}
		},
		failf: t.Fatalf,
	}
	w.sum.Worker = c.Worker
	w.run()
	if err := enc.Encode(logLine{Summary: &w.sum}); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
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

// interval is one acquisition as a worker logged it.
type interval struct {
	Worker     int    `json:"worker"`
	Location   string `json:"location"`
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

// summary is a worker's counts, written as its last line.
type summary struct {
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
	// Faults: errors of injected faults, tolerated with Faults set.
	Faults int `json:"faults"`
	// The slowest successful one-shot Acquire and the slowest Renew: what
	// the TTLs must leave room for.
	MaxAcquire time.Duration `json:"max_acquire"`
	MaxRenew   time.Duration `json:"max_renew"`
}

func (s *summary) add(o summary) {
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
	s.Faults += o.Faults
	s.MaxAcquire = max(s.MaxAcquire, o.MaxAcquire)
	s.MaxRenew = max(s.MaxRenew, o.MaxRenew)
}

// logLine is one line of a worker's log.
type logLine struct {
	Interval *interval `json:"interval,omitempty"`
	Summary  *summary  `json:"summary,omitempty"`
}

// problem is one violation found by checkIntervals.
type problem struct {
	Kind string // overlap | duplicate-instance | duplicate-epoch | epoch-order | malformed
	Msg  string
}

func (p problem) String() string { return p.Kind + ": " + p.Msg }

func (iv *interval) String() string {
	return fmt.Sprintf("{worker %d %s epoch %d [%d, %d] %s %s ttl %v renewals %d ended %s at %s}",
		iv.Worker, iv.InstanceID, iv.Epoch, iv.Start, iv.End, iv.Via, iv.Behaviour, iv.TTL, iv.Renewals, iv.EndedBy, iv.Location)
}

// checkIntervals checks the merged intervals of all workers:
//   - no two confirmed intervals overlap (sharing an instant counts);
//   - no InstanceID and no epoch is handed out twice (all acquisitions);
//   - epochs strictly increase in the order of the confirmed intervals'
//     starts.
//
// Unconfirmed acquisitions are left out of the time-based checks: their
// start reading may postdate the end of their belief, and so a successor's
// start.
func checkIntervals(ivs []interval) []problem {
	var probs []problem
	add := func(kind, format string, args ...any) {
		probs = append(probs, problem{kind, fmt.Sprintf(format, args...)})
	}

	ids := map[string]*interval{}
	epochs := map[uint64]*interval{}
	var confirmed []*interval
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

	slices.SortStableFunc(confirmed, func(a, b *interval) int {
		if a.Start != b.Start {
			return cmp.Compare(a.Start, b.Start)
		}
		return cmp.Compare(a.End, b.End)
	})
	var reach *interval // the interval reaching furthest so far
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

// worker is one worker of a race.
type worker struct {
	cfg   workerConfig
	st    lease.Store
	rng   *rand.Rand
	emit  func(logLine)
	stop  func() bool // the run was asked to stop
	failf func(format string, args ...any)
	sum   summary

	stopped bool
}

// done reports whether the run is over: it was asked to stop, or the hard
// stop passed.
func (w *worker) done() bool {
	if !w.stopped {
		w.stopped = w.stop() || mono() >= w.cfg.HardStop
	}
	return w.stopped
}

// between returns a random duration in [lo, hi].
func (w *worker) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

// ttl draws a TTL log-uniformly from [TTLMin, TTLMax]: short TTLs make
// more acquisitions, long ones leave room for slow writes.
func (w *worker) ttl() time.Duration {
	lo, hi := float64(w.cfg.TTLMin), float64(w.cfg.TTLMax)
	return time.Duration(lo * math.Pow(hi/lo, w.rng.Float64()))
}

// expected fails the worker unless err is one a contended lease may return.
func (w *worker) expected(op string, err error) {
	if err == nil || errors.Is(err, lease.ErrHeld) || errors.Is(err, lease.ErrLost) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	if w.cfg.Faults {
		w.sum.Faults++
		return
	}
	w.failf("worker %d: %s: unexpected error: %v", w.cfg.Worker, op, err)
}

func (w *worker) run() {
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
			l, err = lease.AcquireStore(w.st, ttl)
		} else {
			via = "wait"
			ctx, cancel := context.WithTimeout(context.Background(), w.between(ttl/4, 2*ttl))
			l, err = lease.WaitStore(ctx, w.st, ttl)
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
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				w.sum.WaitTimeouts++
			case errors.Is(err, lease.ErrHeld):
				w.sum.Held++
			}
			time.Sleep(w.between(0, ttl/20))
			continue
		}
		h := &hold{l: l}
		h.start = mono()
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
		iv := interval{
			Worker:     w.cfg.Worker,
			Location:   w.cfg.Location,
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
		w.emit(logLine{Interval: &iv})
	}
}

// hold tracks what a worker knows of one handle's belief.
type hold struct {
	l     *lease.Lease
	start int64

	mu        sync.Mutex
	lastOK    int64 // the latest reading taken before an Expired call that returned false
	confirmed bool
	lapsed    bool // Expired returned true
}

// check calls Expired, crediting it with the reading t taken before the
// call, and reports whether the handle still holds.
func (h *hold) check(t int64) bool {
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
func (h *hold) holding() bool { return h.check(mono()) }

// holdUntil keeps checking until the instant until (on the lease's clock)
// or until the handle lapses; it reports whether the handle still holds.
func (h *hold) holdUntil(until time.Time) bool {
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

func (h *hold) holdFor(d time.Duration) bool { return h.holdUntil(time.Now().Add(d)) }

// hold runs one random behaviour on a fresh handle and fills in how it
// ended. On return the handle no longer believes it holds.
func (w *worker) hold(h *hold, iv *interval) {
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
func (w *worker) lapsed(iv *interval) {
	if iv.EndedBy == "" {
		iv.EndedBy = "lapsed"
	}
}

// renew renews once, checking Expired right before; it reports whether the
// belief ended (lapsed or lost).
func (w *worker) renew(h *hold, iv *interval) (ended bool) {
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
			w.failf("worker %d: Renew returned %v, yet Expired is false", w.cfg.Worker, err)
		}
		if iv.EndedBy == "" {
			iv.EndedBy = "lost"
		}
		return true
	case w.cfg.Faults:
		// An injected fault: the handle holds until its deadline unless
		// a retry succeeds.
		w.sum.Faults++
		return false
	default:
		w.failf("worker %d: Renew: unexpected error: %v", w.cfg.Worker, err)
		return true
	}
}

func (w *worker) release(h *hold, iv *interval) {
	err := h.l.Release()
	switch {
	case err == nil:
		w.sum.Releases++
		iv.Freed = true
	case errors.Is(err, lease.ErrLost):
		w.sum.ReleaseLost++
	case w.cfg.Faults:
		w.sum.Faults++
	default:
		w.failf("worker %d: Release: unexpected error: %v", w.cfg.Worker, err)
	}
	if !h.l.Expired() {
		w.failf("worker %d: Expired is false after Release", w.cfg.Worker)
	}
	if iv.EndedBy == "" {
		iv.EndedBy = "released"
	}
}
