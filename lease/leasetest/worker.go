package leasetest

// The workers of Race and what they log. This file uses no more of package
// lease than its first version had (Acquire and Wait come as functions,
// and the handle's Renew, Release, Expired, Deadline, InstanceID and
// Epoch), so that a test can build it against an older lease and race
// older and newer builds (see lease's TestCompatibility).

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/leaserun/leaserun/lease"
)

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
	cfg     workerConfig
	acquire func(ttl time.Duration) (*lease.Lease, error)
	wait    func(ctx context.Context, ttl time.Duration) (*lease.Lease, error)
	rng     *rand.Rand
	emit    func(logLine)
	stop    func() bool // the run was asked to stop
	failf   func(format string, args ...any)
	sum     summary

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
			l, err = w.acquire(ttl)
		} else {
			via = "wait"
			ctx, cancel := context.WithTimeout(context.Background(), w.between(ttl/4, 2*ttl))
			l, err = w.wait(ctx, ttl)
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
	case errors.Is(err, context.DeadlineExceeded) && h.l.Expired():
		// A store that waits on the network ends a renewal's calls at the
		// holder's deadline, as the Store contract asks: a renewal begun
		// just before it ran out of time, and the handle lapsed.
		w.lapsed(iv)
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
	case errors.Is(err, context.DeadlineExceeded):
		// A store that waits on the network gives a release's calls one
		// TTL, and a loaded machine can take longer: the lease is then
		// left to expire, which is safe.
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

// runWorkerLog runs the worker c in this process, acquiring with acquire
// and wait, and logs to c.Log; it stops once the file c.Stop exists.
// failf ends the worker on a failure.
func runWorkerLog(c workerConfig, acquire func(ttl time.Duration) (*lease.Lease, error),
	wait func(ctx context.Context, ttl time.Duration) (*lease.Lease, error), failf func(string, ...any)) {
	out, err := os.OpenFile(c.Log, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		failf("%v", err)
		return
	}
	defer out.Close()
	enc := json.NewEncoder(out)
	w := &worker{
		cfg:     c,
		acquire: acquire,
		wait:    wait,
		rng:     rand.New(rand.NewPCG(c.Seed, uint64(c.Worker))),
		stop: func() bool {
			_, err := os.Stat(c.Stop)
			return err == nil
		},
		emit: func(l logLine) {
			if err := enc.Encode(l); err != nil {
				failf("%v", err)
			}
		},
		failf: failf,
	}
	w.sum.Worker = c.Worker
	w.run()
	if err := enc.Encode(logLine{Summary: &w.sum}); err != nil {
		failf("%v", err)
	}
	if err := out.Close(); err != nil {
		failf("%v", err)
	}
}
