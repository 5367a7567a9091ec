package supervisor

import (
	"sync"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// Stats is what Run and Do report of the lease as they go, for a health
// check or metrics: the leaserun command serves it with --health-addr.
// Set Config.Stats to a Stats (NewStats, or a zero Stats), and read it with Snapshot,
// from any goroutine, while Run or Do runs and after. One Stats may serve
// several Runs one after the other (a program that stands by again after
// each): its counts add up. Recording costs a mutex and no allocation; no
// call of the store or the log is made for it.
type Stats struct {
	mu              sync.Mutex
	waiting         bool
	l               *lease.Lease  // the lease held last, nil before the first
	stopBefore      time.Duration // the stop point is l.Deadline() - stopBefore
	epoch           uint64
	acquisitions    uint64
	renewals        uint64
	renewalFailures uint64
	buckets         []uint64 // per RenewalBuckets, and one beyond the last
	sum             time.Duration
}

// RenewalBuckets are the upper bounds, in seconds, of the histogram of
// renewal durations: a renewal of a lease on a local disk takes well under
// a millisecond, one over a network filesystem or store some
// milliseconds, one that stalls up to a TTL.
var RenewalBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewStats returns an empty Stats.
func NewStats() *Stats {
	return &Stats{buckets: make([]uint64, len(RenewalBuckets)+1)}
}

// Snapshot is one reading of a Stats.
type Snapshot struct {
	// Waiting reports that Run or Do stands by for the lease (Config.Wait).
	Waiting bool
	// Held reports that the lease is held: acquired, and neither lost,
	// lapsed nor released (lease.Lease.Expired is false).
	Held bool
	// Epoch is the epoch of the last acquisition, 0 before the first.
	Epoch uint64
	// StopIn is the time left, while Held, before the child must be
	// stopped unless a renewal succeeds first (the deadline guard's stop
	// point: the lease's deadline less Grace and Margin); 0 otherwise.
	StopIn time.Duration
	// Acquisitions, Renewals and RenewalFailures count the acquisitions,
	// the successful renewals and the renewals that failed (an error,
	// the lease lost included).
	Acquisitions, Renewals, RenewalFailures uint64
	// RenewalCounts are cumulative counts of renewals, successful or not,
	// that took at most RenewalBuckets[i] seconds; RenewalCount counts them
	// all and RenewalSum adds up their durations.
	RenewalCounts []uint64
	RenewalCount  uint64
	RenewalSum    time.Duration
}

// Snapshot reads s.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{
		Waiting:         s.waiting,
		Epoch:           s.epoch,
		Acquisitions:    s.acquisitions,
		Renewals:        s.renewals,
		RenewalFailures: s.renewalFailures,
		RenewalCounts:   make([]uint64, len(RenewalBuckets)),
		RenewalSum:      s.sum,
	}
	var n uint64
	for i, c := range s.buckets {
		n += c
		if i < len(RenewalBuckets) {
			snap.RenewalCounts[i] = n
		}
	}
	snap.RenewalCount = n
	if s.l != nil && !s.l.Expired() {
		snap.Held = true
		snap.StopIn = max(time.Until(s.l.Deadline().Add(-s.stopBefore)), 0)
	}
	return snap
}

// setWaiting records that a wait for the lease began or ended.
func (s *Stats) setWaiting(w bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.waiting = w
	s.mu.Unlock()
}

// acquired records an acquisition of l, whose child must stop stopBefore
// its deadline.
func (s *Stats) acquired(l *lease.Lease, stopBefore time.Duration) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.l, s.stopBefore, s.epoch = l, stopBefore, l.Epoch()
	s.acquisitions++
	s.mu.Unlock()
}

// renewed records a renewal that took d and ended with err.
func (s *Stats) renewed(d time.Duration, err error) {
	if s == nil {
		return
	}
	secs := d.Seconds()
	i := 0
	for i < len(RenewalBuckets) && secs > RenewalBuckets[i] {
		i++
	}
	s.mu.Lock()
	if s.buckets == nil {
		s.buckets = make([]uint64, len(RenewalBuckets)+1)
	}
	if err == nil {
		s.renewals++
	} else {
		s.renewalFailures++
	}
	s.buckets[i]++
	s.sum += d
	s.mu.Unlock()
}
