// Command leaserun-etcd is leaserun with leases on etcd
// (etcd://HOST:PORT[,HOST:PORT...]/KEY and etcds://..., package
// etcdstore) beside leases on files. leaserun hands it a --lease etcd://
// or etcds:// command line, and it takes leaserun's place (same PID); it
// can be run directly as well:
//
//	leaserun-etcd [run] --lease etcd://HOST:PORT[,...]/KEY [flags] -- COMMAND [ARG...]
//	leaserun-etcd status --lease etcds://HOST:PORT[,...]/KEY
//
// TLS and users come from etcdctl's environment (ETCDCTL_CACERT,
// ETCDCTL_CERT, ETCDCTL_KEY, ETCDCTL_USER, ETCDCTL_DIAL_TIMEOUT). It links
// etcd's gRPC client, whose package initialisation would slow every
// start of leaserun (the README's etcd figures, bench/etcd.sh): that is
// why it is an executable of its own. It links
// the health server as well (--health-addr), whose net/http gRPC links
// anyway, so that such a run is handed once, here.
package main

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/grpclog"

	"github.com/leaserun/leaserun/etcdstore"
	"github.com/leaserun/leaserun/internal/cli"
	"github.com/leaserun/leaserun/internal/health"
	"github.com/leaserun/leaserun/lease"
)

func main() {
	// gRPC logs connection errors to stderr on its own; leaserun says what
	// went wrong in its own words, once.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
	cli.Exec(cli.WithScheme(cli.Scheme{Name: "etcd", Open: open}), cli.WithScheme(cli.Scheme{Name: "etcds", Open: open}),
		cli.WithHealth(health.Listen))
}

// open opens the lease at location. A location that is not well formed,
// or an ETCDCTL_* variable that cannot be used, is a usage error (it
// wraps lease.ErrInvalid); a cluster that cannot be reached, an error
// naming its endpoints (exit 74).
func open(ctx context.Context, location string) (lease.Store, error) {
	st, err := etcdstore.Open(ctx, location)
	if errors.Is(err, etcdstore.ErrLocation) || errors.Is(err, etcdstore.ErrSetting) {
		return nil, usage{err}
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// usage is an error of etcdstore that leaserun reports as a usage error:
// its words, and lease.ErrInvalid for errors.Is.
type usage struct{ err error }

func (u usage) Error() string   { return u.err.Error() }
func (u usage) Unwrap() []error { return []error{u.err, lease.ErrInvalid} }
