package lease

import (
	"context"
	"time"
)

// State is what a read of a lease found.
type State string

const (
	// StateFree: no record yet, or one that can't be read.
	StateFree State = "free"
	// StateHeld: a holder renewed within its TTL.
	StateHeld State = "held"
	// StateExpired: the holder stopped renewing; anyone may take over.
	StateExpired State = "expired"
	// StateReleased: the holder gave the lease up.
	StateReleased State = "released"
)

// Status is one reading of a lease.
type Status struct {
	State State
	// Record is the newest record; nil when the lease is free.
	Record *Record
	// VersionsRemoved reports that the published copy at the lease's path
	// holds a later acquisition (a higher epoch) than the newest version in
	// PATH.d, or PATH.d holds no version at all: the versions were removed
	// or replaced by hand since the copy was written, which no writer of
	// this package does (deleting the lease's files while it is held or
	// waited on). State and Record are what PATH.d says, as for Acquire.
	// Only file leases report it.
	VersionsRemoved bool
	// Published is the record of the published copy when VersionsRemoved.
	Published *Record
}

// readTimeout bounds Read's call of the store, and ReadStore's when its
// context has no deadline.
const readTimeout = time.Minute

// Read reads the lease at path without acquiring it: for status commands,
// and for followers that find the holder through Record.Meta. It takes no
// lock and never writes. Held or expired is judged as Acquire judges it, by
// wall clock (WithClock and WithClockSkew apply). A missing or unreadable
// lease is free; an I/O error is returned as it is. A version that can't be
// opened though a listing shows it is looked at again, as by Acquire. A
// lease that is not held and that no acquisition could take is an error
// wrapping ErrExhausted, as Acquire would return.
//
// Read(path, ...) is ReadStore(context.Background(), Files(path), ...).
func Read(path string, opts ...Option) (Status, error) {
	if path == "" {
		return Status{}, errEmptyPath
	}
	return ReadStore(context.Background(), Files(path), opts...)
}

// ReadStore is Read for the lease kept in st. It gives up when ctx ends,
// and after a minute if ctx has no deadline.
func ReadStore(ctx context.Context, st Store, opts ...Option) (Status, error) {
	o := buildOptions(opts)
	if err := validate(st, time.Second, &o); err != nil {
		return Status{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readTimeout)
		defer cancel()
	}
	v, rec, err := load(ctx, st)
	if err != nil {
		return Status{}, err
	}
	status := statusOf(rec, o.clock.Now(), o.skew)
	if status.State != StateHeld {
		if _, err := acquisitionEpoch(st, v, rec); err != nil {
			return Status{}, err
		}
	}
	if pub := details(st).versionsRemoved(v, rec); pub != nil {
		status.VersionsRemoved, status.Published = true, pub
	}
	return status, nil
}

func statusOf(rec *Record, now time.Time, skew time.Duration) Status {
	switch {
	case rec == nil:
		return Status{State: StateFree}
	case rec.Released():
		return Status{State: StateReleased, Record: rec}
	case heldByWallClock(rec, now, skew):
		return Status{State: StateHeld, Record: rec}
	default:
		return Status{State: StateExpired, Record: rec}
	}
}
