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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/leaserun/leaserun/bench/metricsweight/sample"
)

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
	s := sample.Fake()
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
	buckets := make(map[float64]uint64, len(sample.RenewalBuckets))
	for i, le := range sample.RenewalBuckets {
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
