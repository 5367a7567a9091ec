// Command stdlib serves leaserun's eight metrics on /metrics, written with
// the standard library as internal/health's formatMetrics does. With no
// argument it exits at once at the top of main (for start-up timing);
// "stdlib ADDR" serves on ADDR.
package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"

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
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(formatMetrics(sample.Fake()))
	})
	fmt.Fprintln(os.Stderr, http.ListenAndServe(os.Args[1], mux))
	os.Exit(1)
}

// formatMetrics is internal/health's.
func formatMetrics(s sample.Snapshot) []byte {
	var b bytes.Buffer
	metric := func(name, typ, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, formatFloat(v))
	}
	bit := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	metric("leaserun_lease_held", "gauge", "1 while this leaserun holds the lease, 0 otherwise.", bit(s.Held))
	metric("leaserun_lease_epoch", "gauge", "Epoch of this leaserun's last acquisition of the lease (0 before the first).", float64(s.Epoch))
	metric("leaserun_lease_deadline_seconds", "gauge",
		"Time left before the child must be stopped unless a renewal succeeds (0 when the lease is not held).", s.StopIn.Seconds())
	metric("leaserun_waiting", "gauge", "1 while this leaserun stands by for the lease (--wait), 0 otherwise.", bit(s.Waiting))
	metric("leaserun_acquisitions_total", "counter", "Acquisitions of the lease by this leaserun.", float64(s.Acquisitions))
	metric("leaserun_renewals_total", "counter", "Successful renewals of the lease.", float64(s.Renewals))
	metric("leaserun_renewal_failures_total", "counter", "Renewals of the lease that failed (the lease lost included).", float64(s.RenewalFailures))
	const hist = "leaserun_renewal_duration_seconds"
	fmt.Fprintf(&b, "# HELP %s How long renewals of the lease took, successful or not.\n# TYPE %s histogram\n", hist, hist)
	for i, le := range sample.RenewalBuckets {
		fmt.Fprintf(&b, "%s_bucket{le=%q} %d\n", hist, formatFloat(le), s.RenewalCounts[i])
	}
	fmt.Fprintf(&b, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n",
		hist, s.RenewalCount, hist, formatFloat(s.RenewalSum.Seconds()), hist, s.RenewalCount)
	return b.Bytes()
}

// formatFloat writes v as Prometheus's clients do.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
