package lease

import (
	"errors"
	"maps"
	"time"
)

// Clock is the source of time for a lease. The default is the system clock,
// whose readings carry the monotonic clock; tests inject a fake one so that
// they need not sleep.
//
// Two measurements take Now's readings as they are: the holder's deadline
// (Expired and Deadline: the start of its last write plus the TTL) and
// Wait's observation of a held record (unchanged for a whole TTL). Go
// compares and subtracts two readings on the monotonic clock when both
// carry it, as time.Now's do, and that makes both measurements immune to
// steps of the wall clock. Readings without it (a fake clock's, or
// time.Now().UTC(), .Local(), .In(loc) or .Round(0), which strip it) put
// them on the wall time Now returns: a wall clock stepped back then
// lengthens the holder's lease in its own eyes beyond what others grant
// it, and one stepped forward cuts Wait's observation short, so that a
// standby takes over a live lease. Neither can happen to a clock whose
// readings are the only time there is, as a test's fake clock is. The
// wall-clock tests (the record's RenewedAt+TTL, by which Acquire, Read and
// Expired judge) use Now's wall time either way.
type Clock interface {
	Now() time.Time
	// After fires once d has passed (like time.After).
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Option configures Acquire, Wait and Read, and their Store forms.
type Option func(*options)

type options struct {
	clock        Clock
	meta         map[string]string
	skew         time.Duration
	pollInterval time.Duration
	oncePer      time.Duration
}

func buildOptions(opts []Option) options {
	o := options{clock: systemClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock sets the clock. Default: the system clock. Its readings should
// carry a monotonic clock reading, as time.Now's do: without one, the
// holder's deadline and Wait's observation are measured on the wall time
// Now returns, which a step of the wall clock can lengthen or cut short
// (see Clock). WithClock cannot refuse such a clock: a test's fake clock
// has no monotonic reading either, and needs none, and nothing tells the
// two apart.
func WithClock(c Clock) Option {
	return func(o *options) { o.clock = c }
}

// WithMeta sets the Record's Meta at acquisition: discovery data such as the
// endpoint the holder serves on, read by followers through Read. Default:
// none. The map is copied.
func WithMeta(meta map[string]string) Option {
	return func(o *options) { o.meta = maps.Clone(meta) }
}

// WithClockSkew sets how far apart the wall clocks of hosts sharing the lease
// may be. Acquire and Read count a record as held until RenewedAt+TTL+skew
// and count a record renewed more than skew in the future as held. Wait does
// not use wall clocks and ignores it. Default: 0, right for one host; across
// hosts set it above the worst offset NTP allows there (a second is common).
func WithClockSkew(d time.Duration) Option {
	return func(o *options) { o.skew = d }
}

// WithPollInterval sets how often Wait reads the lease when no change
// notification arrives. Changes made on this host wake Wait at once where the
// OS can watch files; changes made by other hosts through a network
// filesystem are seen at the next poll. Default: ttl/10, between 10ms and 1s;
// on a local filesystem (Linux: ext4, xfs, btrfs, f2fs, tmpfs, ramfs) whose
// changes Wait is notified of, the TTL, at most 30s, as polling there only
// guards against a lost notification; but ttl/10 again while Wait cannot
// watch the version directory (PATH.d was removed or replaced, and no watch
// could be put on the one at its path yet).
func WithPollInterval(d time.Duration) Option {
	return func(o *options) { o.pollInterval = d }
}

// WithOncePer makes Acquire and Wait take the lease only to run once in
// the current slot of length d: slots are aligned to the Unix epoch in UTC
// (SlotOf), so that every host sharing the lease computes the same ones.
// The acquisition writes the slot into the record (Record.Slot). If the
// record it would replace already holds a slot that ends after the
// current one begins (this slot, or a later one that a host whose clock
// runs ahead has started), Acquire and Wait write nothing and return an
// error wrapping ErrDone, whether that record is held or not: a standby
// stops waiting as soon as it reads such a record. The judgement is made
// on the record that the acquisition's compare-and-swap replaces, so of
// any number of processes on any number of hosts, one at most acquires
// in a slot.
//
// The slot is spent when it is taken, not when its run succeeds: a run
// that fails, crashes or loses the lease is the slot's run all the same
// (at most once per slot, as cron users expect; ReleaseWithStatus records
// how it ended). Default: 0, no slots. A negative d is ErrInvalid.
func WithOncePer(d time.Duration) Option {
	return func(o *options) { o.oncePer = d }
}

// ErrInvalid is returned, wrapped with the offending value, for a setting
// the lease cannot work with.
var ErrInvalid = errors.New("liblease: invalid setting")

// errEmptyPath refuses a file lease without a path.
var errEmptyPath = errorf(ErrInvalid, "empty lease path")

func validate(st Store, ttl time.Duration, o *options) error {
	switch {
	case st == nil:
		return errorf(ErrInvalid, "nil store")
	case ttl <= 0:
		return errorf(ErrInvalid, "ttl %v is not positive", ttl)
	case o.skew < 0:
		return errorf(ErrInvalid, "clock skew %v is negative", o.skew)
	case o.pollInterval < 0:
		return errorf(ErrInvalid, "poll interval %v is negative", o.pollInterval)
	case o.clock == nil:
		return errorf(ErrInvalid, "nil clock")
	case o.oncePer < 0:
		return errorf(ErrInvalid, "once-per slot length %v is negative", o.oncePer)
	}
	return nil
}
