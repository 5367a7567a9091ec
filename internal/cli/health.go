package cli

import (
	"context"
	"log/slog"
	"net"
	"strconv"

	"github.com/leaserun/leaserun/supervisor"
)

// checkHealthAddr checks a --health-addr value: HOST:PORT, the host
// optional (":8080" listens on every address). Every executable checks
// it, those that do not serve it too (package net, unlike net/http's
// server, is linked anyway).
func checkHealthAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("--health-addr %s: %v (give HOST:PORT or :PORT, e.g. :8080)", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return usageErrorf("--health-addr %s: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

// A HealthServer serves --health-addr (package internal/health's Server).
type HealthServer interface {
	// Addr is the address it listens on.
	Addr() string
	// Run runs run, and serves until it has returned; it returns run's
	// error.
	Run(ctx context.Context, run func(context.Context) error) error
}

// listenHealth listens for a HealthServer on addr, serving stats.
type listenHealth func(addr string, stats *supervisor.Stats, log *slog.Logger) (HealthServer, error)

// healthServer is the executable that serves --health-addr runs when this
// one does not link a health server: leaserun, which would otherwise link
// net/http's server and pay for it at every start-up.
const healthServer = "leaserun-http"
