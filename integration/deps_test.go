package integration

// The tests build leaserun and its sibling executables from source in
// TestMain, which Go's test cache does not see: it keys a package's cached
// result on what the test binary links. Linking every package those
// executables are made of makes a change to any of them run the tests
// again, rather than report a cached pass of the code before it.
import (
	_ "github.com/leaserun/leaserun/etcdstore"
	_ "github.com/leaserun/leaserun/internal/cli"
	_ "github.com/leaserun/leaserun/internal/health"
	_ "github.com/leaserun/leaserun/lease"
	_ "github.com/leaserun/leaserun/s3store"
	_ "github.com/leaserun/leaserun/supervisor"
)
