// Package health is leaserun's health server (--health-addr): /healthz,
// /leader and /metrics over HTTP, from a supervisor.Stats. It links
// net/http's server, which costs every run at start-up whether the flag is
// given or not, so the leaserun executable does not link it: it hands a run
// with --health-addr to leaserun-http (or, for a lease in S3 or etcd, to
// leaserun-s3 or leaserun-etcd), which registers it with cli.WithHealth.
package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/oklog/run"

	"github.com/leaserun/leaserun/supervisor"
)

// Server serves --health-addr: /healthz, /leader and /metrics, from a
// supervisor.Stats.
type Server struct {
	srv   *http.Server
	ln    net.Listener
	stats *supervisor.Stats
	log   *slog.Logger
}

// Listen listens on addr for the health server of stats, which logs to
// log. Its listener's connections never raise SIGPIPE (see noSigpipe):
// leaserun forwards the SIGPIPE it catches to its child, and a write to a
// client that hung up must not look like one sent to it.
func Listen(addr string, stats *supervisor.Stats, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := &Server{ln: noSigpipe(ln), stats: stats, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", h.healthz)
	mux.HandleFunc("/leader", h.leader)
	mux.HandleFunc("/metrics", h.metrics)
	h.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return h, nil
}

// Addr is the address the server listens on (its port chosen, for a port
// 0).
func (h *Server) Addr() string { return h.ln.Addr().String() }

// serve is the server's actor: it serves until interrupted by stop. A
// failure of the server never ends the group (the child's work comes
// first): it is logged, and the actor waits to be interrupted.
func (h *Server) serve(quit <-chan struct{}) func() error {
	return func() error {
		if err := h.srv.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
			h.log.Warn("the health server stopped", "addr", h.Addr(), "err", err)
		}
		<-quit
		return nil
	}
}

// stop closes the server: the process is about to exit, and a probe in
// flight is not worth waiting for.
func (h *Server) stop() { h.srv.Close() }

// get refuses a method other than GET and HEAD.
func get(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// healthz answers 200 while leaserun runs: it supervises, or stands by.
func (h *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !get(w, r) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// leader answers 200 while this leaserun holds the lease, 503 otherwise: a
// readiness probe that sends traffic only to the holder.
func (h *Server) leader(w http.ResponseWriter, r *http.Request) {
	if !get(w, r) {
		return
	}
	s := h.stats.Snapshot()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !s.Held {
		w.WriteHeader(http.StatusServiceUnavailable)
		if s.Waiting {
			fmt.Fprintln(w, "not the leader: standing by")
		} else {
			fmt.Fprintln(w, "not the leader")
		}
		return
	}
	fmt.Fprintf(w, "leader: epoch %d\n", s.Epoch)
}

// metricsContentType is Prometheus's text exposition format, version 0.0.4.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// metrics writes the Stats in Prometheus's text format.
func (h *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if !get(w, r) {
		return
	}
	w.Header().Set("Content-Type", metricsContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(formatMetrics(h.stats.Snapshot()))
}

// formatMetrics is s in Prometheus's text format.
func formatMetrics(s supervisor.Snapshot) []byte {
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
	for i, le := range supervisor.RenewalBuckets {
		fmt.Fprintf(&b, "%s_bucket{le=%q} %d\n", hist, formatFloat(le), s.RenewalCounts[i])
	}
	fmt.Fprintf(&b, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n",
		hist, s.RenewalCount, hist, formatFloat(s.RenewalSum.Seconds()), hist, s.RenewalCount)
	return b.Bytes()
}

// formatFloat writes v as Prometheus's clients do.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// errRunDone ends the group of Run once the supervisor returned.
var errRunDone = errors.New("run done")

// Run runs the supervisor (runFn) and the health server as the actors of
// one group (oklog/run): the server serves while the supervisor stands by
// and runs the child, and is closed once runFn has returned, whose error
// Run returns. The server's actor never ends the group: a failed health
// server must not stop the child.
func (h *Server) Run(ctx context.Context, runFn func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var err error
	var g run.Group
	g.Add(func() error {
		err = runFn(ctx)
		return errRunDone
	}, func(error) { cancel() })
	quit := make(chan struct{})
	g.Add(h.serve(quit), func(error) {
		h.stop()
		close(quit)
	})
	g.Run()
	return err
}
