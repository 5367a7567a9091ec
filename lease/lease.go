package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// ErrHeld is returned by Acquire when a live (unexpired) lease is held by a
// different instance.
var ErrHeld = errors.New("liblease: lease is held by another instance")

// ErrLost is returned by Renew when the lease has been taken over by another
// instance — the caller is no longer the holder. It is also returned once the
// handle's own lease has expired, since a takeover may then have happened,
// and by Acquire and Wait when writing the new record took longer than the
// whole TTL (a stalled disk, or a TTL shorter than a write), since nobody
// may rely on such a lease; that error says so in its own words, as nobody
// took anything over, and errors.Is matches it with ErrLost.
var ErrLost = errors.New("liblease: lease was taken over by another instance")

// overdueError is the error of an acquisition whose write took longer than
// the TTL: it is ErrLost, as ErrLost's doc says, but its text is its own.
type overdueError struct{ msg string }

func (e *overdueError) Error() string { return e.msg }
func (e *overdueError) Unwrap() error { return ErrLost }

// ErrDone is returned, wrapped with the slot that ran, by Acquire and Wait
// (and their Store forms) made WithOncePer when the current slot has had
// its run already: the record holds this slot, or a later one. They wrote
// nothing.
var ErrDone = errors.New("liblease: this slot has had its run")

// doneError returns an error wrapping ErrDone if rec says that the slot
// of o.oncePer holding now has had its run: rec's slot ends after that slot
// begins (it is that slot, or a later one, started by a host whose clock
// is ahead). Nil when WithOncePer is off.
func doneError(st Store, rec *Record, now time.Time, o *options) error {
	if o.oncePer <= 0 || rec == nil || rec.Slot == nil {
		return nil
	}
	cur := SlotOf(now, o.oncePer)
	if !rec.Slot.End().After(cur) {
		return nil
	}
	how := "still running or ended without releasing"
	if rec.Slot.ExitStatus != nil {
		how = fmt.Sprintf("exit status %d", *rec.Slot.ExitStatus)
	}
	return errorf(ErrDone, "%s: the slot of %v from %s has had its run: the run at epoch %d in the slot from %s (%s)",
		st, o.oncePer, cur.Format(time.RFC3339Nano), rec.Slot.Epoch, rec.Slot.Start.Format(time.RFC3339Nano), how)
}

// ErrReleased is returned by Renew after Release.
var ErrReleased = errors.New("liblease: lease was released")

// ErrExhausted is returned, wrapped with the location and the way out, by
// Acquire, Wait and Read (and their Store forms) for a lease that is not
// held and that nobody can acquire: its record claims epoch
// math.MaxUint64, or (files) its newest version is numbered
// math.MaxUint64, so the next acquisition has no number left. The protocol
// adds one per acquisition and cannot get there; hand-made files can.
// Removing PATH and PATH.d resets a file lease.
var ErrExhausted = errors.New("liblease: lease can't be acquired again")

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// heldError says who holds the lease at loc, and until when.
func heldError(sentinel error, loc Store, r *Record) error {
	return errorf(sentinel, "%s: held by %s (pid %d on %s, epoch %d) until %s",
		loc, r.InstanceID, r.PID, r.Host, r.Epoch, r.ExpiresAt().Format(time.RFC3339Nano))
}

// Lease is a held lease handle. It is safe for concurrent use: a watchdog may
// call Expired while another goroutine renews. Renew and Release are
// serialised with each other; Expired, Deadline, InstanceID, Epoch and
// Record never wait for them, so they answer even while a write hangs in a
// stuck filesystem or store.
type Lease struct {
	st    Store
	ttl   time.Duration
	clock Clock

	// deadline is when the holder's lease lapses in its own eyes: the start
	// of its last successful write plus ttl, on the monotonic clock.
	deadline atomic.Pointer[time.Time]
	// over is set once the handle stopped believing it holds (lost,
	// lapsed or released); Expired is true from then on.
	over atomic.Bool
	// releasing is set when Release begins, so that a Renew it overtakes
	// reports ErrReleased rather than a lapse, and leaves the release to it.
	releasing atomic.Bool
	record    atomic.Pointer[Record]
	// lost is the first ErrLost that Renew returned, for Err.
	lost atomic.Pointer[error]

	mu       sync.Mutex // serialises writes; guards the fields below
	rev      Revision   // the revision of the value this handle wrote last
	released bool
	pending  *attempt // a write whose outcome an error hid
}

// attempt is one write whose result is not known yet.
type attempt struct {
	data  []byte
	rec   Record
	start time.Time
}

// Acquire claims the lease at path for ttl. It succeeds when the lease is
// free, expired, released or unreadable, and fails with ErrHeld when a
// different instance holds a still-valid lease; the error says who holds and
// until when. An I/O error (a directory at path, a missing parent directory,
// permission denied) is returned as it is, never taken as "free". Nor is a
// version that a listing shows but that can't be opened, as when this host's
// client answers from its cache of failed lookups: Acquire looks again,
// pausing between looks, and returns an error if the view has not cleared
// within 10s: unreadable means bytes that were read and are not a record.
//
// Whether a record is still valid is judged by the wall clock: RenewedAt +
// TTL + the WithClockSkew allowance. A record renewed in the future is held.
//
// On success the caller must Renew before ttl elapses and Release on
// shutdown. The new version is synced to disk before Acquire returns, so its
// epoch survives a power loss. If the write took longer than ttl, so that
// the lease had lapsed before Acquire could return it, Acquire releases it
// again and returns an error that says so (errors.Is(err, ErrLost)).
//
// Acquire(path, ...) is AcquireStore(Files(path), ...).
func Acquire(path string, ttl time.Duration, opts ...Option) (*Lease, error) {
	if path == "" {
		return nil, errEmptyPath
	}
	return AcquireStore(Files(path), ttl, opts...)
}

// AcquireStore is Acquire for the lease kept in st. Each of its calls of
// st is bounded by ttl: a write that takes longer gives a lease nobody may
// rely on.
func AcquireStore(st Store, ttl time.Duration, opts ...Option) (*Lease, error) {
	o := buildOptions(opts)
	if err := validate(st, ttl, &o); err != nil {
		return nil, err
	}
	for {
		ctx, cancel := within(context.Background(), o.clock, o.clock.Now().Add(ttl))
		v, rec, err := load(ctx, st)
		cancel()
		if err != nil {
			return nil, err
		}
		if err := doneError(st, rec, o.clock.Now(), &o); err != nil {
			return nil, err
		}
		if rec != nil && heldByWallClock(rec, o.clock.Now(), o.skew) {
			return nil, heldError(ErrHeld, st, rec)
		}
		l, err := take(st, v, rec, ttl, &o)
		if l != nil || err != nil {
			return l, err
		}
		// Another challenger made the next version first: judge it anew.
	}
}

// load reads st: its value and the record in it, nil when there is none
// or it is unreadable (a free lease).
func load(ctx context.Context, st Store) (Value, *Record, error) {
	v, err := st.Load(ctx)
	if err != nil {
		return Value{}, nil, err
	}
	return v, recordOf(&v), nil
}

// recordOf decodes the record in v: nil when there is none or it is
// unreadable.
func recordOf(v *Value) *Record {
	if v.Rev == "" || len(v.Data) == 0 {
		return nil
	}
	rec, err := decodeRecord(v.Data)
	if err != nil {
		return nil
	}
	return rec
}

// within returns a context for store calls that must end by the instant
// until, read on clk, and its cancel function, called once they are done.
// Contexts run on the system's timers: with another clock, the time left
// until then on clk is counted from now.
func within(parent context.Context, clk Clock, until time.Time) (context.Context, context.CancelFunc) {
	if _, ok := clk.(systemClock); !ok {
		until = time.Now().Add(until.Sub(clk.Now()))
	}
	return context.WithDeadline(parent, until)
}

// heldByWallClock is the one-shot judgement of a record read at now.
func heldByWallClock(r *Record, now time.Time, skew time.Duration) bool {
	if r.Released() {
		return false
	}
	if r.RenewedAt.After(now.Add(skew)) {
		return true // renewed in our future: some clock is off; don't trust it to be old
	}
	return now.Before(r.ExpiresAt().Add(skew))
}

var hostname = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	return h
})

// nextEpoch is the epoch of an acquisition that replaces v, whose record
// is rec: one more than rec's, or than v.Floor when there is no readable
// record (every epoch written before is at most Floor).
//
// It reports false when the epochs are spent: the one before is the largest
// there is, which only a hand-made record can hold, and wrapping round to 0
// would make the new holder's record unreadable, so its lease free to all.
func nextEpoch(v Value, rec *Record) (uint64, bool) {
	before := v.Floor
	if rec != nil {
		before = rec.Epoch
	}
	if before == math.MaxUint64 {
		return 0, false
	}
	return before + 1, true
}

// storeDetails is what the file store tells the protocol beyond Store:
// checks and words that only files need. Other stores get plainDetails.
type storeDetails interface {
	// exhausted returns an error wrapping ErrExhausted if no write can
	// follow v.
	exhausted(v Value) error
	// resetHint says how to reset the lease, in messages.
	resetHint() string
	// records names what keeps the lease, in messages.
	records() string
	// gone is a release's look, before it writes, at whether the value at
	// rev still stands: nil if so (or if it cannot tell), an error
	// wrapping ErrConflict if others replaced it, one wrapping ErrRemoved
	// if it was removed by hand.
	gone(rev Revision) error
	// versionsRemoved returns, for Read, the record of a later
	// acquisition that the store still shows beside v when v's history was
	// removed by hand; nil if there is none.
	versionsRemoved(v Value, rec *Record) *Record
}

// details returns st's storeDetails.
func details(st Store) storeDetails {
	if d, ok := st.(storeDetails); ok {
		return d
	}
	return plainDetails{st}
}

// plainDetails is storeDetails for a store that has none of its own.
type plainDetails struct{ st Store }

func (plainDetails) exhausted(Value) error                  { return nil }
func (d plainDetails) resetHint() string                    { return "delete " + d.st.String() + " to reset" }
func (plainDetails) records() string                        { return "the lease's record" }
func (plainDetails) gone(Revision) error                    { return nil }
func (plainDetails) versionsRemoved(Value, *Record) *Record { return nil }

// acquisitionEpoch returns the epoch of an acquisition that replaces v,
// whose record is rec, or an error wrapping ErrExhausted if there can be
// none: Acquire and Read judge by it alike.
func acquisitionEpoch(st Store, v Value, rec *Record) (uint64, error) {
	if err := details(st).exhausted(v); err != nil {
		return 0, err
	}
	epoch, ok := nextEpoch(v, rec)
	if !ok {
		return 0, errorf(ErrExhausted, "%s: no epochs left after %d; %s",
			st, uint64(math.MaxUint64), details(st).resetHint())
	}
	return epoch, nil
}

// exitStatusGrowth is how much a record with a slot of its own may grow
// when its release adds the run's exit status.
const exitStatusGrowth = len(`,"exit_status":-9223372036854775808`)

// take tries to make a new acquisition the value after v, whose record is
// rec. It returns nil, nil when another writer got there first. With
// WithOncePer it takes the lease in the current slot, or returns an error
// wrapping ErrDone if prev ran in it (see doneError); without, it carries
// prev's slot forward.
func take(st Store, v Value, prev *Record, ttl time.Duration, o *options) (*Lease, error) {
	start := o.clock.Now()
	if err := doneError(st, prev, start, o); err != nil {
		return nil, err
	}
	wall := start.Round(0)
	rec := Record{
		InstanceID: uuid.NewString(),
		PID:        os.Getpid(),
		Host:       hostname(),
		AcquiredAt: wall,
		RenewedAt:  wall,
		TTL:        ttl,
		Meta:       o.meta,
	}
	var err error
	if rec.Epoch, err = acquisitionEpoch(st, v, prev); err != nil {
		return nil, err
	}
	var prevSlot *Slot
	if prev != nil {
		prevSlot = prev.clone().Slot
	}
	rec.Slot = prevSlot
	growth := recordGrowth
	if o.oncePer > 0 {
		rec.Slot = &Slot{Start: SlotOf(start, o.oncePer), Length: o.oncePer, Epoch: rec.Epoch}
		growth += exitStatusGrowth
	}
	data := encodeRecord(&rec)
	if len(data) > MaxRecordSize-growth {
		// Everyone else would read it as unreadable, hence free.
		return nil, errorf(ErrInvalid, "%s: meta makes the record larger than %d bytes", st, MaxRecordSize)
	}
	ctx, cancel := within(context.Background(), o.clock, start.Add(ttl))
	rev, err := st.Swap(ctx, v.Rev, data, Write{Durable: true})
	cancel()
	if errors.Is(err, ErrConflict) {
		return nil, nil
	}
	if err != nil {
		// If the write took effect after all, give it up so that it
		// doesn't block the lease for a TTL.
		abandon(st, data, rec, prevSlot, ttl, o)
		return nil, err
	}
	l := &Lease{st: st, ttl: ttl, clock: o.clock, rev: rev}
	l.setDeadline(start)
	l.record.Store(&rec)
	if l.Expired() {
		// The write took longer than the whole TTL: nobody may rely on it.
		took := o.clock.Now().Sub(start)
		l.unslot(prevSlot)
		l.Release()
		return nil, &overdueError{fmt.Sprintf("liblease: %s: acquiring took %v, longer than the ttl %v, so the lease was released at once",
			st, took, ttl)}
	}
	return l, nil
}

// abandon gives up an acquisition whose write failed with an error that
// leaves its outcome unknown: if the write stands as the current value, it
// writes a released record after it, with the slot put back to prevSlot,
// the one before (its run never started). It tries a few times while the
// store fails, within one TTL: a write nobody believes in would otherwise
// block the lease for a TTL.
func abandon(st Store, data []byte, rec Record, prevSlot *Slot, ttl time.Duration, o *options) {
	ctx, cancel := within(context.Background(), o.clock, o.clock.Now().Add(ttl))
	defer cancel()
	for range abandonTries {
		if ctx.Err() != nil {
			return
		}
		v, err := st.Load(ctx)
		if err != nil {
			continue
		}
		if !bytes.Equal(v.Data, data) {
			return // it did not take effect, or others built on it
		}
		rec.TTL = 0
		rec.RenewedAt = o.clock.Now().Round(0)
		rec.Slot = prevSlot
		if _, err := st.Swap(ctx, v.Rev, encodeRecord(&rec), Write{}); err == nil || errors.Is(err, ErrConflict) {
			return
		}
		// Unknown: the next Load shows whether the acquisition still stands.
	}
}

// abandonTries bounds abandon's tries.
const abandonTries = 3

// unslot puts the slot of the handle's record back to prevSlot, the one
// before its acquisition, for the release of an acquisition whose run never
// started: the slot was not spent. Only take calls it, before the handle
// is returned.
func (l *Lease) unslot(prevSlot *Slot) {
	rec := *l.record.Load()
	if rec.Slot == nil || rec.Slot.Epoch != rec.Epoch {
		return
	}
	rec.Slot = prevSlot
	l.record.Store(&rec)
}

func (l *Lease) setDeadline(writeStart time.Time) {
	d := writeStart.Add(l.ttl)
	l.deadline.Store(&d)
}

// Expired reports whether this holder's lease has lapsed based on its last
// successful Renew (measured on the monotonic clock from the instant before
// that write began, and by the wall clock against the record's RenewedAt+TTL,
// which also runs while the machine is suspended), or the handle has
// otherwise stopped holding: Renew
// returned ErrLost, or Release was called. Once true it stays true. A holder
// should use it to self-fence: if Expired is true, stop touching protected
// state — a takeover may have happened.
func (l *Lease) Expired() bool {
	if l.over.Load() {
		return true
	}
	now := l.clock.Now()
	// The monotonic deadline is immune to wall-clock steps, but it stands
	// still while the machine is suspended (and in some paused VMs), when
	// others' clocks run on. The wall-clock expiry others judge by covers
	// that: whichever comes first ends the lease.
	if !now.Before(*l.deadline.Load()) || !now.Round(0).Before(l.record.Load().ExpiresAt()) {
		l.over.Store(true)
		return true
	}
	return false
}

// Deadline is the instant Expired turns true unless Renew succeeds first. It
// carries a monotonic clock reading when the clock's readings do, as the
// system clock's do, so time.Until(Deadline()) is immune to wall-clock
// steps; with a clock whose readings carry none, it is a wall time (see
// Clock).
func (l *Lease) Deadline() time.Time { return *l.deadline.Load() }

// TTL is the time-to-live the lease was acquired with.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Path is the lease's location, as its Store's String names it: for a
// file lease, the path of its file.
func (l *Lease) Path() string { return l.st.String() }

// Store is the store the lease is kept in.
func (l *Lease) Store() Store { return l.st }

// InstanceID returns this holder's fencing token: a fresh UUID per
// acquisition.
func (l *Lease) InstanceID() string { return l.record.Load().InstanceID }

// Epoch returns this acquisition's epoch: higher than that of every earlier
// acquisition of the path.
func (l *Lease) Epoch() uint64 { return l.record.Load().Epoch }

// Record returns a copy of the record this handle last wrote.
func (l *Lease) Record() Record { return l.record.Load().clone() }

// Renew extends the lease by its TTL from the instant before the write
// begins. It returns ErrLost (wrapped, saying who holds now) when another
// instance took the lease over, when the lease's files (its record) were
// removed or replaced by hand, or when this handle's lease already expired
// — even if nobody took over, since a challenger may be about to; the
// caller must then acquire anew. Any other error leaves the handle holding
// until its deadline, and Renew may be retried. Its calls of the store end
// at the handle's deadline at the latest: a renewal that could only
// complete later would come too late.
func (l *Lease) Renew() error {
	err := l.renew()
	if errors.Is(err, ErrLost) {
		l.setLost(err)
	}
	return err
}

// Err says why the handle stopped holding, once Renew has found out: it is
// the first ErrLost error that Renew returned, or is returning. It is nil
// while the handle holds, and also after the handle stopped holding in
// another way (its deadline passed with no Renew since, or Release was
// called), which Expired reports. A watchdog that sees Expired turn true
// may find the reason here.
func (l *Lease) Err() error {
	if p := l.lost.Load(); p != nil {
		return *p
	}
	return nil
}

// setLost records err for Err, unless an error is recorded already.
func (l *Lease) setLost(err error) { l.lost.CompareAndSwap(nil, &err) }

func (l *Lease) renew() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released || l.releasing.Load() {
		return errorf(ErrReleased, "%s", l.st)
	}
	if l.Expired() {
		return l.lostError()
	}
	ctx, cancel := within(context.Background(), l.clock, l.Deadline())
	defer cancel()
	if err := l.resolvePending(ctx); err != nil {
		return fmt.Errorf("liblease: renewing %s: %w", l.st, err)
	}
	if l.Expired() {
		return l.lostError()
	}

	start := l.clock.Now()
	prev := l.record.Load()
	rec := *prev
	rec.RenewedAt = start.Round(0)
	data := encodeRecord(&rec)
	if len(data) > MaxRecordSize {
		// Readers would find it unreadable, hence free.
		return errorf(ErrInvalid, "%s: record of %d bytes exceeds %d", l.st, len(data), MaxRecordSize)
	}
	rev, err := l.st.Swap(ctx, l.rev, data, Write{})
	if errors.Is(err, ErrRemoved) {
		// The reason first: a watchdog that sees Expired turn true reads it.
		err := l.removedError(err)
		l.setLost(err)
		l.over.Store(true)
		return err
	}
	if errors.Is(err, ErrConflict) {
		return l.lostError()
	}
	if err != nil {
		l.pending = &attempt{data: data, rec: rec, start: start}
		return fmt.Errorf("liblease: renewing %s: %w", l.st, err)
	}
	// The write took effect, and perhaps others built on it already (files:
	// a listing found a higher version beside it): that only happens once
	// the new record expired, by the challenger's clocks, so after the old
	// deadline too, and the check of Expired in advance catches it
	// (docs/DESIGN.md, "Renew").
	if lapsed := l.advance(rev, &rec, start); lapsed {
		if l.releasing.Load() {
			return errorf(ErrReleased, "%s", l.st)
		}
		l.giveUp(nil)
		return errorf(ErrLost, "%s: lease lapsed at %s while the renewal was being written",
			l.st, prev.ExpiresAt().Format(time.RFC3339Nano))
	}
	return nil
}

// advance records a write that took effect. If the lease lapsed while the
// write was under way, a watchdog may already have stopped trusting it: the
// handle stays over, and advance reports that the value it wrote must be
// given up.
func (l *Lease) advance(rev Revision, rec *Record, start time.Time) (lapsed bool) {
	lapsed = l.Expired()
	l.rev = rev
	l.record.Store(rec)
	if !lapsed {
		l.setDeadline(start)
	}
	// A watchdog's Expired may have seen the old deadline pass between
	// our check and the new deadline: then the handle is over all the same.
	return lapsed || l.over.Load()
}

// resolvePending finds out whether a write (renewal or release) that failed
// with an error made its value after all: a later write would otherwise
// find the value changed and think the lease lost. Its data is unique, so
// a Load that shows exactly it shows that write.
func (l *Lease) resolvePending(ctx context.Context) error {
	p := l.pending
	if p == nil {
		return nil
	}
	v, err := l.st.Load(ctx)
	if err != nil {
		return err
	}
	l.settlePending(v)
	return nil
}

// settlePending settles the pending write, if any, by v, a value loaded
// after it: a value holding exactly its bytes is the handle's own write,
// which the handle adopts (if the handle lapsed meanwhile, it stays over,
// and its deadline is not moved); a value at a revision other than the
// handle's last means someone else wrote after it, and the handle is over;
// otherwise the write took no effect. The caller holds l.mu.
func (l *Lease) settlePending(v Value) {
	p := l.pending
	if p == nil {
		return
	}
	l.pending = nil
	switch {
	case bytes.Equal(v.Data, p.data):
		// It did: adopt it. If it lapsed meanwhile, Renew finds the handle
		// expired and gives it up; Release gives it up anyway.
		l.advance(v.Rev, &p.rec, p.start)
	case v.Rev != l.rev:
		// Someone else wrote after our value (or after the pending write,
		// which others then built on): the lease is lost.
		l.over.Store(true)
	}
}

// callContext bounds a store call of a handle outside Renew: one TTL.
func (l *Lease) callContext() (context.Context, context.CancelFunc) {
	return within(context.Background(), l.clock, l.clock.Now().Add(l.ttl))
}

// lostError marks the handle over and says why: who holds now, or that the
// lease lapsed with nobody else holding (then it also gives the record up,
// so a standby need not wait out a TTL for it). A value that the handle's
// own pending write made is the handle's, not another holder's: it is
// adopted and given up as well.
func (l *Lease) lostError() error {
	l.over.Store(true)
	if l.releasing.Load() {
		return errorf(ErrReleased, "%s", l.st)
	}
	expired := l.record.Load().ExpiresAt()
	ctx, cancel := l.callContext()
	v, rec, err := load(ctx, l.st)
	cancel()
	if err == nil {
		l.settlePending(v)
	}
	if err == nil && v.Rev != l.rev && rec != nil && !rec.Released() {
		return l.lostTo(rec)
	}
	if err == nil && v.Rev != l.rev && rec != nil && rec.Released() && rec.Epoch == l.Epoch() && rec.InstanceID == l.InstanceID() {
		return errorf(ErrLost, "%s: released by another process at this holder's epoch %d (leaserun release --epoch) while it was held",
			l.st, rec.Epoch)
	}
	if err == nil && v.Rev == l.rev && !l.record.Load().Released() {
		l.giveUp(nil) // once: its released record is then the newest, and ours
	}
	return errorf(ErrLost, "%s: lease expired at %s before it was renewed",
		l.st, expired.Format(time.RFC3339Nano))
}

// giveUp writes a released record after this handle's value, if nobody
// wrote one first. It is how a handle that stopped holding frees the lease
// at once instead of leaving it to expire. A status that is not nil goes
// into the record's slot, if the slot is the handle's own (its acquisition
// took it: WithOncePer).
//
// A released record frees the lease to whoever reads it, so giveUp first
// has the store make sure that the handle's value is still there
// (storeDetails.gone): if others replaced it, or the lease's record was
// removed or replaced by hand, the handle frees nothing, and writes
// nothing that would free a lease started anew.
func (l *Lease) giveUp(status *int) error {
	if err := details(l.st).gone(l.rev); err != nil {
		switch {
		case errors.Is(err, ErrRemoved):
			l.over.Store(true)
			return l.removedError(err)
		case errors.Is(err, ErrConflict):
			l.over.Store(true)
			return l.lostToNewest()
		}
		return fmt.Errorf("liblease: releasing %s: %w", l.st, err)
	}
	start := l.clock.Now()
	rec := *l.record.Load()
	rec.TTL = 0
	rec.RenewedAt = start.Round(0)
	if status != nil && rec.Slot != nil && rec.Slot.Epoch == rec.Epoch {
		slot := *rec.Slot
		code := *status
		slot.ExitStatus = &code
		rec.Slot = &slot
	}
	data := encodeRecord(&rec)
	ctx, cancel := l.callContext()
	defer cancel()
	rev, err := l.st.Swap(ctx, l.rev, data, Write{})
	// A release that took effect while others already built on it (files:
	// the released record was linked, and someone already took the lease
	// after it) is done all the same: released is released.
	if errors.Is(err, ErrRemoved) {
		return l.removedError(err)
	}
	if errors.Is(err, ErrConflict) {
		return l.lostToNewest()
	}
	if err != nil {
		l.pending = &attempt{data: data, rec: rec, start: start}
		return fmt.Errorf("liblease: releasing %s: %w", l.st, err)
	}
	l.rev = rev
	l.record.Store(&rec)
	return nil
}

// lostToNewest is ErrLost saying who holds now, if anyone does.
func (l *Lease) lostToNewest() error {
	ctx, cancel := l.callContext()
	_, rec, err := load(ctx, l.st)
	cancel()
	if err == nil && rec != nil && !rec.Released() {
		return l.lostTo(rec)
	}
	return errorf(ErrLost, "%s", l.st)
}

// lostTo is ErrLost saying that r's holder holds the lease now. A takeover
// always raises the epoch; a record after the handle's with an epoch no
// higher than the handle's was made by an acquisition that started anew
// after the lease's record was removed or replaced by hand, and the error
// says so.
func (l *Lease) lostTo(r *Record) error {
	if r.Epoch <= l.Epoch() {
		return fmt.Errorf("%w (epoch %d, not above this holder's %d): %s were removed or replaced by hand while it was held",
			heldError(ErrLost, l.st, r), r.Epoch, l.Epoch(), details(l.st).records())
	}
	return heldError(ErrLost, l.st, r)
}

// removedError is ErrLost for cause, an error of the store wrapping
// ErrRemoved: the lease's record was removed or replaced by hand under the
// handle. The handle writes nothing more: a renewal or release would carry
// on in a record that another acquisition may have started anew.
func (l *Lease) removedError(cause error) error {
	return fmt.Errorf("%w: %s: %w", ErrLost, l.st, cause)
}

// Release gives the lease up, so that a challenger may take it at once. It
// never frees someone else's lease: if another instance took over, Release
// changes nothing and returns ErrLost. The handle stops holding when Release
// is called, whatever it returns; a Release whose write failed with an I/O
// error may be retried. Releasing twice is a no-op.
//
// The released record keeps the lease's epoch, so the next acquisition
// still gets a higher one.
func (l *Lease) Release() error { return l.release(nil) }

// ReleaseWithStatus is Release, and records status, the exit status of the
// run made under the lease, in the record's slot (Record.Slot.ExitStatus)
// when the slot is this acquisition's own (WithOncePer), so that readers of
// the record see how the slot's run ended. Without a slot of its own it is
// Release. A retry after a failed write records status again; once a
// release is written, the status is not changed.
func (l *Lease) ReleaseWithStatus(status int) error { return l.release(&status) }

func (l *Lease) release(status *int) error {
	l.releasing.Store(true)
	l.over.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	if l.pending != nil {
		ctx, cancel := l.callContext()
		err := l.resolvePending(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("liblease: releasing %s: %w", l.st, err)
		}
	}
	err := l.giveUp(status)
	if err == nil || errors.Is(err, ErrLost) {
		l.released = true
	}
	return err
}
