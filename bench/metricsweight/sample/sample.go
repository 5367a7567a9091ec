// Package sample is what the three programs of bench/metricsweight serve:
// one snapshot of a holder's metrics, as supervisor.Snapshot has them.
package sample

import "time"

// RenewalBuckets are supervisor.RenewalBuckets.
var RenewalBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Renewals are the durations of the renewals that every program records.
var Renewals = []time.Duration{300 * time.Microsecond, 700 * time.Microsecond, 2 * time.Millisecond, 20 * time.Millisecond, 3 * time.Second}

// Snapshot is the part of supervisor.Snapshot that internal/health's
// formatMetrics reads.
type Snapshot struct {
	Waiting, Held                           bool
	Epoch                                   uint64
	StopIn                                  time.Duration
	Acquisitions, Renewals, RenewalFailures uint64
	RenewalCounts                           []uint64
	RenewalCount                            uint64
	RenewalSum                              time.Duration
}

// Fake is a snapshot of a holder that renewed Renewals, the last failing.
func Fake() Snapshot {
	s := Snapshot{Held: true, Epoch: 42, StopIn: 9500 * time.Millisecond, Acquisitions: 1,
		Renewals: uint64(len(Renewals) - 1), RenewalFailures: 1, RenewalCounts: make([]uint64, len(RenewalBuckets))}
	for _, d := range Renewals {
		for i, le := range RenewalBuckets {
			if d.Seconds() <= le {
				s.RenewalCounts[i]++
			}
		}
		s.RenewalCount++
		s.RenewalSum += d
	}
	return s
}
