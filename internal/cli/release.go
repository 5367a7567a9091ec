package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/alecthomas/kong"

	"github.com/leaserun/leaserun/lease"
)

// releaseCmd is "leaserun release": the operator's release of a lease
// whose holder is known to be dead, so that nobody waits out its TTL. It
// is a compare-and-swap on the epoch (lease.ReleaseEpoch), so it can't free
// a later holder's lease; it never deletes the lease's files.
type releaseCmd struct {
	Lease string `short:"l" required:"" env:"LEASERUN_LEASE" placeholder:"LOCATION" help:"The lease, as for run."`
	Epoch uint64 `required:"" placeholder:"N" help:"The epoch to release, as status shows it."`
}

// Validate checks the flags.
func (c *releaseCmd) Validate() error {
	if c.Lease == "" {
		return usageErrorf("--lease: the lease is required")
	}
	if _, err := parseLease(c.Lease); err != nil {
		return err
	}
	if c.Epoch == 0 {
		return usageErrorf("--epoch: 0: epochs start at 1")
	}
	return nil
}

// Run releases the lease, and ends leaserun with 0 when it is released
// (now, or already), 1 when it is not at the epoch (nothing done), 74 on
// an I/O error; one line on stderr says which, naming the lease.
func (c *releaseCmd) Run(kctx *kong.Context, ls *leases) error {
	store, _, err := ls.open(context.Background(), c.Lease)
	if err != nil {
		return leaseError(kctx.Stderr, err)
	}
	rec, err := lease.ReleaseEpoch(context.Background(), store, c.Epoch)
	switch {
	case errors.Is(err, lease.ErrNotEpoch):
		fmt.Fprintf(kctx.Stderr, "leaserun: lease %s: nothing released: %v\n", c.Lease, err)
		return exitStatus(1)
	case errors.Is(err, lease.ErrInvalid):
		return usageErrorf("--epoch: %v", err)
	case err != nil:
		fmt.Fprintf(kctx.Stderr, "leaserun: error: lease %s: %v\n", c.Lease, err)
		return exitStatus(exitIO)
	case rec.Released():
		fmt.Fprintf(kctx.Stderr, "leaserun: lease %s: epoch %d was released already (by %s, pid %d on %s)\n",
			c.Lease, c.Epoch, rec.InstanceID, rec.PID, rec.Host)
	default:
		fmt.Fprintf(kctx.Stderr, "leaserun: lease %s: released epoch %d of %s (pid %d on %s); if that holder still runs, it loses the lease at its next renewal and exits 76\n",
			c.Lease, c.Epoch, rec.InstanceID, rec.PID, rec.Host)
	}
	return nil
}
