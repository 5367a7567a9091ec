// Command leaserun runs one command while holding a lease, and never lets
// that command outlive the lease:
//
//	leaserun [run] --lease LOCATION [flags] -- COMMAND [ARG...]
//	leaserun status --lease LOCATION [--format TEMPLATE]
//	leaserun --version | --help
//
// It links the file store only: a lease in S3 or etcd is handed to
// leaserun-s3 or leaserun-etcd, and a run with --health-addr to
// leaserun-http, which take its place (see package internal/cli): their
// clients and net/http's server would cost every run at start-up. The
// README's reference section is the contract.
package main

import "github.com/leaserun/leaserun/internal/cli"

func main() { cli.Exec() }
