package lease

import "time"

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
	VersionsRemoved bool
	// Published is the record of the published copy when VersionsRemoved.
	Published *Record
}

// Read reads the lease at path without acquiring it: for status commands,
// and for followers that find the holder through Record.Meta. It takes no
// lock and never writes. Held or expired is judged as Acquire judges it, by
// wall clock (WithClock and WithClockSkew apply). A missing or unreadable
// lease is free; an I/O error is returned as it is. A version that can't be
// opened though a listing shows it is looked at again, as by Acquire. A
// lease that is not held and that no acquisition could take is an error
// wrapping ErrExhausted, as Acquire would return.
func Read(path string, opts ...Option) (Status, error) {
	o := buildOptions(opts)
	if err := validate(path, time.Second, &o); err != nil {
		return Status{}, err
	}
	s := newStore(path)
	if err := s.checkPath(); err != nil {
		return Status{}, err
	}
	v, err := s.read()
	if err != nil {
		return Status{}, err
	}
	st := statusOf(v, o.clock.Now(), o.skew)
	if st.State != StateHeld {
		if _, err := acquisitionEpoch(s, v); err != nil {
			return Status{}, err
		}
	}
	if pub := s.published(); pub != nil && pub.Epoch > newestEpoch(v) {
		st.VersionsRemoved, st.Published = true, pub
	}
	return st, nil
}

// newestEpoch is the highest epoch the versions in v's directory can hold:
// the newest record's, or, when it is unreadable, its version number (every
// record the protocol writes has Epoch <= its version number while PATH.d
// is intact; store.nextEpoch).
func newestEpoch(v view) uint64 {
	if v.rec != nil {
		return v.rec.Epoch
	}
	return v.seq
}

func statusOf(v view, now time.Time, skew time.Duration) Status {
	switch {
	case v.rec == nil:
		return Status{State: StateFree}
	case v.rec.Released():
		return Status{State: StateReleased, Record: v.rec}
	case heldByWallClock(v.rec, now, skew):
		return Status{State: StateHeld, Record: v.rec}
	default:
		return Status{State: StateExpired, Record: v.rec}
	}
}
