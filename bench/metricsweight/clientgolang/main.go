// Command clientgolang serves leaserun's eight metrics on /metrics with
// github.com/prometheus/client_golang: a Collector that makes const
// metrics of one snapshot at each scrape, in a registry of its own, served
// by promhttp. With no argument it exits at once at the top of main (for
// start-up timing); "clientgolang ADDR" serves on ADDR.
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// renewalBuckets are supervisor.RenewalBuckets.
var renewalBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// renewals are the durations of the renewals that every program records.
var renewals = []time.Duration{300 * time.Microsecond, 700 * time.Microsecond, 2 * time.Millisecond, 20 * time.Millisecond, 3 * time.Second}

// snapshot is the part of supervisor.Snapshot that formatMetrics reads.
type snapshot struct {
	Waiting, Held                           bool
	Epoch                                   uint64
	StopIn                                  time.Duration
	Acquisitions, Renewals, RenewalFailures uint64
	RenewalCounts                           []uint64
	RenewalCount                            uint64
	RenewalSum                              time.Duration
}

// fake is a snapshot of a holder that renewed renewals, the last failing.
func fake() snapshot {
	s := snapshot{Held: true, Epoch: 42, StopIn: 9500 * time.Millisecond, Acquisitions: 1,
		Renewals: uint64(len(renewals) - 1), RenewalFailures: 1, RenewalCounts: make([]uint64, len(renewalBuckets))}
	for _, d := range renewals {
		for i, le := range renewalBuckets {
			if d.Seconds() <= le {
				s.RenewalCounts[i]++
			}
		}
		s.RenewalCount++
		s.RenewalSum += d
	}
	return s
}

// collector makes the metrics of a snapshot.
type collector struct {
	held, epoch, deadline, waiting, acquisitions, renewed, failures, hist *prometheus.Desc
}

func newCollector() *collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &collector{
		held:         d("leaserun_lease_held", "1 while this leaserun holds the lease, 0 otherwise."),
		epoch:        d("leaserun_lease_epoch", "Epoch of this leaserun's last acquisition of the lease (0 before the first)."),
		deadline:     d("leaserun_lease_deadline_seconds", "Time left before the child must be stopped unless a renewal succeeds (0 when the lease is not held)."),
		waiting:      d("leaserun_waiting", "1 while this leaserun stands by for the lease (--wait), 0 otherwise."),
		acquisitions: d("leaserun_acquisitions_total", "Acquisitions of the lease by this leaserun."),
		renewed:      d("leaserun_renewals_total", "Successful renewals of the lease."),
		failures:     d("leaserun_renewal_failures_total", "Renewals of the lease that failed (the lease lost included)."),
		hist:         d("leaserun_renewal_duration_seconds", "How long renewals of the lease took, successful or not."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := fake()
	bit := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.held, bit(s.Held))
	gauge(c.epoch, float64(s.Epoch))
	gauge(c.deadline, s.StopIn.Seconds())
	gauge(c.waiting, bit(s.Waiting))
	counter(c.acquisitions, s.Acquisitions)
	counter(c.renewed, s.Renewals)
	counter(c.failures, s.RenewalFailures)
	buckets := make(map[float64]uint64, len(renewalBuckets))
	for i, le := range renewalBuckets {
		buckets[le] = s.RenewalCounts[i]
	}
	ch <- prometheus.MustNewConstHistogram(c.hist, s.RenewalCount, s.RenewalSum.Seconds(), buckets)
}

func main() {
	if len(os.Args) < 2 {
		return
	}
	if os.Args[1] == "-goroutines" { // how many goroutines package initialisation left
		fmt.Println(runtime.NumGoroutine())
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	fmt.Fprintln(os.Stderr, http.ListenAndServe(os.Args[1], mux))
	os.Exit(1)
}
