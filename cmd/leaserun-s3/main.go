// Command leaserun-s3 is leaserun with leases on S3 and S3-compatible
// object storage (s3://BUCKET/KEY, package s3store) beside leases on
// files. leaserun hands it a --lease s3://... command line, and it takes
// leaserun's place; it can be run directly as well:
//
//	leaserun-s3 [run] --lease s3://BUCKET/KEY[?region=&endpoint=&path_style=] [flags] -- COMMAND [ARG...]
//	leaserun-s3 status --lease s3://BUCKET/KEY
//
// It links the AWS SDK, whose initialisation alone costs more than
// leaserun's whole start-up: that is why it is an executable of its own.
// It links the health server as well (--health-addr), whose net/http the
// SDK links anyway, so that such a run is handed once, here.
package main

import (
	"context"

	"github.com/leaserun/leaserun/internal/cli"
	"github.com/leaserun/leaserun/internal/health"
	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/s3store"
)

func main() {
	cli.Exec(cli.WithScheme(cli.Scheme{Name: "s3", Open: open}), cli.WithHealth(health.Listen))
}

// open opens the lease at location. Its errors for the location itself
// wrap lease.ErrInvalid (a usage error); the store's first write proves
// that the server enforces conditional writes, or fails with an error
// (exit 74) that says it does not.
func open(ctx context.Context, location string) (lease.Store, error) {
	return s3store.Open(ctx, location)
}
