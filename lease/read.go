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
	return st, nil
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
