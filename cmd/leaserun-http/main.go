// Command leaserun-http is leaserun with its health server (--health-addr:
// /healthz, /leader and /metrics over HTTP, package internal/health).
// leaserun hands it a run with --health-addr, and it takes leaserun's
// place (same PID); it can be run directly as well:
//
//	leaserun-http [run] --lease LOCATION --health-addr ADDR [flags] -- COMMAND [ARG...]
//
// It links net/http's server, which costs every run of leaserun at
// start-up whether the flag is given or not: that is why it is an
// executable of its own. A lease in S3 or etcd it hands on to leaserun-s3
// or leaserun-etcd, which link the health server too.
package main

import (
	"github.com/leaserun/leaserun/internal/cli"
	"github.com/leaserun/leaserun/internal/health"
)

func main() { cli.Exec(cli.WithHealth(health.Listen)) }
