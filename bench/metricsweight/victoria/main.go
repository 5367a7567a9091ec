// Command victoria serves leaserun's eight metrics on /metrics with
// github.com/VictoriaMetrics/metrics: gauges and counters set from one
// snapshot at each scrape, and its PrometheusHistogram (le buckets), which
// cannot be loaded from bucket counts and so records each renewal itself.
// Its HELP lines carry no text: the package writes none. With no argument
// it exits at once at the top of main (for start-up timing); "victoria
// ADDR" serves on ADDR.
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/leaserun/leaserun/bench/metricsweight/sample"
)

func main() {
	if len(os.Args) < 2 {
		return
	}
	if os.Args[1] == "-goroutines" { // how many goroutines package initialisation left
		fmt.Println(runtime.NumGoroutine())
		return
	}
	metrics.ExposeMetadata(true) // TYPE lines, and HELP lines without text
	set := metrics.NewSet()
	held := set.NewGauge("leaserun_lease_held", nil)
	epoch := set.NewGauge("leaserun_lease_epoch", nil)
	deadline := set.NewGauge("leaserun_lease_deadline_seconds", nil)
	waiting := set.NewGauge("leaserun_waiting", nil)
	acquisitions := set.NewCounter("leaserun_acquisitions_total")
	renewed := set.NewCounter("leaserun_renewals_total")
	failures := set.NewCounter("leaserun_renewal_failures_total")
	hist := set.NewPrometheusHistogramExt("leaserun_renewal_duration_seconds", sample.RenewalBuckets)
	for _, d := range sample.Renewals {
		hist.Update(d.Seconds())
	}
	bit := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	var mu sync.Mutex // one scrape sets the values and writes them at a time
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		s := sample.Fake()
		held.Set(bit(s.Held))
		epoch.Set(float64(s.Epoch))
		deadline.Set(s.StopIn.Seconds())
		waiting.Set(bit(s.Waiting))
		acquisitions.Set(s.Acquisitions)
		renewed.Set(s.Renewals)
		failures.Set(s.RenewalFailures)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		set.WritePrometheus(w)
	})
	fmt.Fprintln(os.Stderr, http.ListenAndServe(os.Args[1], mux))
	os.Exit(1)
}
