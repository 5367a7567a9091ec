package s3store_test

import (
	"context"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakes3"
	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
	"github.com/leaserun/leaserun/s3store"
)

// conformance is the leasetest configuration over srv. A race's worker
// process reaches the parent's server through the endpoint in the
// location, with a client of its own.
func conformance(srv *fakes3.Server, prefix string) leasetest.Config {
	return leasetest.Config{
		New: func(t *testing.T) string { return location(srv, newKey(prefix)) },
		Open: func(loc string) (lease.Store, error) {
			return s3store.Open(context.Background(), loc)
		},
		Plant: func(t *testing.T, loc string, data []byte) {
			if err := srv.Put(bucket, keyOf(t, loc), data, nil); err != nil {
				t.Fatal(err)
			}
		},
		// Room for six processes' requests on two cores.
		TTLMin: 100 * time.Millisecond,
		TTLMax: 400 * time.Millisecond,
	}
}

// The S3 store passes the conformance suite against gofakes3, with races
// of goroutines and of processes, each with its own client.
func TestConformance(t *testing.T) {
	var srv *fakes3.Server
	if !leasetest.RaceWorker() {
		srv = startServer(t)
	}
	leasetest.TestStore(t, conformance(srv, "conformance"))
}
