package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotEpoch is returned, wrapped with what the lease holds instead, by
// ReleaseEpoch when the lease's record is not at the epoch it was given:
// another acquisition was made since, or none at that epoch yet. Nothing
// was written.
var ErrNotEpoch = errors.New("liblease: the lease is not at that epoch")

// ReleaseEpoch releases the lease kept in st on behalf of the holder of
// epoch, whoever that is: the operator's release of a lease whose holder
// is known to be dead, so that nobody need wait out its TTL. It is a
// compare-and-swap like every write of the protocol: it loads the record,
// and only if the record's epoch is epoch does it write a released copy
// of it (the epoch, the holder's fields and the slot kept), at the
// revision it loaded; a record written meanwhile makes it judge anew. So
// it never frees a later holder's lease. It never deletes anything.
//
// It returns the record it found at epoch: one already released is left as
// it is, and returned with a nil error (Released reports true). A record at
// another epoch, or none, is an error wrapping ErrNotEpoch that says what
// the lease holds. An error of the store is returned as it is (a write
// whose outcome it leaves unknown, if a read does not then show it).
//
// A holder of epoch that is still alive loses the lease at its next
// renewal: Renew finds a record it did not write and returns ErrLost,
// and a supervisor kills its child. Until then it runs on beside whoever
// takes the lease next, as a holder frozen past its TTL would: fence what
// matters with the epoch.
//
// Its calls of st end when ctx ends, or after a minute if ctx has no
// deadline. WithClock sets the clock of the released record's RenewedAt;
// other options are ignored.
func ReleaseEpoch(ctx context.Context, st Store, epoch uint64, opts ...Option) (Record, error) {
	o := buildOptions(opts)
	if err := validate(st, time.Second, &o); err != nil {
		return Record{}, err
	}
	if epoch == 0 {
		return Record{}, errorf(ErrInvalid, "epoch 0: epochs start at 1")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readTimeout)
		defer cancel()
	}
	for {
		v, rec, err := load(ctx, st)
		if err != nil {
			return Record{}, err
		}
		if rec == nil {
			return Record{}, errorf(ErrNotEpoch, "%s: not at epoch %d: it has no record (never taken, or unreadable): nothing to release", st, epoch)
		}
		if rec.Epoch != epoch {
			return rec.clone(), notEpochError(st, rec, epoch, o.clock.Now())
		}
		if rec.Released() {
			return rec.clone(), nil
		}
		released := rec.clone()
		released.TTL = 0
		released.RenewedAt = o.clock.Now().Round(0)
		data := encodeRecord(&released)
		_, err = st.Swap(ctx, v.Rev, data, Write{})
		switch {
		case err == nil:
			return rec.clone(), nil
		case errors.Is(err, ErrConflict):
			// The holder renewed, or someone else wrote: judge anew.
			if cerr := ctx.Err(); cerr != nil {
				return Record{}, fmt.Errorf("liblease: releasing %s at epoch %d: %w", st, epoch, cerr)
			}
			continue
		case errors.Is(err, ErrRemoved):
			return Record{}, fmt.Errorf("liblease: releasing %s at epoch %d: %w", st, epoch, err)
		}
		// Unknown: the data is unique (a fresh RenewedAt), so a read that
		// shows it shows this write.
		if now, lerr := st.Load(ctx); lerr == nil && bytes.Equal(now.Data, data) {
			return rec.clone(), nil
		}
		return Record{}, fmt.Errorf("liblease: releasing %s at epoch %d: %w", st, epoch, err)
	}
}

// notEpochError says what the lease at st holds instead of epoch.
func notEpochError(st Store, rec *Record, epoch uint64, now time.Time) error {
	var what string
	switch statusOf(rec, now, 0).State {
	case StateHeld:
		what = fmt.Sprintf("held by %s (pid %d on %s) until %s", rec.InstanceID, rec.PID, rec.Host,
			rec.ExpiresAt().Format(time.RFC3339Nano))
	case StateReleased:
		what = fmt.Sprintf("released by %s (pid %d on %s)", rec.InstanceID, rec.PID, rec.Host)
	default:
		what = fmt.Sprintf("expired: %s (pid %d on %s) stopped renewing at %s", rec.InstanceID, rec.PID, rec.Host,
			rec.RenewedAt.Format(time.RFC3339Nano))
	}
	if rec.Epoch < epoch {
		return errorf(ErrNotEpoch, "%s: not at epoch %d but at %d, which is lower (no acquisition has reached %d): %s",
			st, epoch, rec.Epoch, epoch, what)
	}
	return errorf(ErrNotEpoch, "%s: not at epoch %d but at %d: %s", st, epoch, rec.Epoch, what)
}
