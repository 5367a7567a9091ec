package lease

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
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

// ErrReleased is returned by Renew after Release.
var ErrReleased = errors.New("liblease: lease was released")

// ErrExhausted is returned, wrapped with the path and the way out, by
// Acquire, Wait and Read for a lease that is not held and that nobody can
// acquire: its newest version is numbered math.MaxUint64, or its record
// claims epoch math.MaxUint64, so the next acquisition has no number left.
// The protocol adds one per acquisition and cannot get there; hand-made
// files can. Removing PATH and PATH.d resets the lease.
var ErrExhausted = errors.New("liblease: lease can't be acquired again")

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// heldError says who holds the lease at path, and until when.
func heldError(sentinel error, path string, r *Record) error {
	return errorf(sentinel, "%s: held by %s (pid %d on %s, epoch %d) until %s",
		path, r.InstanceID, r.PID, r.Host, r.Epoch, r.ExpiresAt().Format(time.RFC3339Nano))
}

// Lease is a held lease handle. It is safe for concurrent use: a watchdog may
// call Expired while another goroutine renews. Renew and Release are
// serialised with each other; Expired, Deadline, InstanceID, Epoch and
// Record never wait for them, so they answer even while a write hangs in a
// stuck filesystem.
type Lease struct {
	store *store
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
	seq      uint64     // the version this handle wrote last
	released bool
	pending  *attempt // a renewal whose outcome an I/O error hid

	codec *recordCodec // encodes this handle's records; set once by take
}

// recordCodec encodes the records of one handle without reflection. They
// differ only in RenewedAt and TTL (renewals and releases copy the rest from
// the acquisition), so it keeps the JSON around those two values, as
// encodeRecord made it for the acquisition; encoding/json took a twentieth of
// a renewal. A nil codec encodes with encodeRecord.
type recordCodec struct {
	head []byte // the JSON up to and including the key "renewed_at"
	tail []byte // the JSON after the value of "ttl"
}

// newRecordCodec makes a codec from r and data, encodeRecord(r). It returns
// nil if data is not shaped as expected, or if the codec would not encode r
// exactly as data.
func newRecordCodec(r *Record, data []byte) *recordCodec {
	// A quote inside a JSON string is escaped, so the first `,"renewed_at":`
	// is the key, not part of a value before it.
	const renewedKey, ttlKey = `,"renewed_at":`, `","ttl":`
	i := bytes.Index(data, []byte(renewedKey))
	if i < 0 {
		return nil
	}
	head := data[:i+len(renewedKey)]
	j := bytes.Index(data[len(head):], []byte(ttlKey))
	if j < 0 {
		return nil
	}
	rest := data[len(head)+j+len(ttlKey):]
	k := 0
	for k < len(rest) && (rest[k] == '-' || '0' <= rest[k] && rest[k] <= '9') {
		k++
	}
	c := &recordCodec{head: slices.Clone(head), tail: slices.Clone(rest[k:])}
	if !bytes.Equal(c.encode(r), data) {
		return nil
	}
	return c
}

// encode returns encodeRecord(r) for a record of the codec's handle.
func (c *recordCodec) encode(r *Record) []byte {
	if c == nil {
		return encodeRecord(r)
	}
	at, err := r.RenewedAt.MarshalJSON() // as encoding/json writes it
	if err != nil {
		return encodeRecord(r)
	}
	b := make([]byte, 0, len(c.head)+len(at)+len(`,"ttl":`)+20+len(c.tail))
	b = append(append(b, c.head...), at...)
	b = strconv.AppendInt(append(b, `,"ttl":`...), int64(r.TTL), 10)
	return append(b, c.tail...)
}

// attempt is one write whose result is not known yet.
type attempt struct {
	seq   uint64
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
func Acquire(path string, ttl time.Duration, opts ...Option) (*Lease, error) {
	o := buildOptions(opts)
	if err := validate(path, ttl, &o); err != nil {
		return nil, err
	}
	s := newStore(path)
	if err := s.checkPath(); err != nil {
		return nil, err
	}
	for {
		v, err := s.read()
		if err != nil {
			return nil, err
		}
		if v.rec != nil && heldByWallClock(v.rec, o.clock.Now(), o.skew) {
			return nil, heldError(ErrHeld, path, v.rec)
		}
		l, err := take(s, v, ttl, &o)
		if l != nil || err != nil {
			return l, err
		}
		// Another challenger made the next version first: judge it anew.
	}
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

// pid is os.Getpid, which is a system call each time; a Go process never
// changes its pid.
var pid = sync.OnceValue(os.Getpid)

// acquisitionEpoch returns the epoch of an acquisition that replaces v, or
// an error wrapping ErrExhausted if there can be none: Acquire and Read
// judge by it alike.
func acquisitionEpoch(s *store, v view) (uint64, error) {
	if v.seq == math.MaxUint64 {
		return 0, errorf(ErrExhausted, "%s: no version numbers left after %d; remove %s and %s to reset",
			s.path, v.seq, s.path, s.dir)
	}
	epoch, ok := s.nextEpoch(v)
	if !ok {
		return 0, errorf(ErrExhausted, "%s: no epochs left after %d; remove %s and %s to reset",
			s.path, uint64(math.MaxUint64), s.path, s.dir)
	}
	return epoch, nil
}

// take tries to make a new acquisition the version after v. It returns nil,
// nil when another writer got there first.
func take(s *store, v view, ttl time.Duration, o *options) (*Lease, error) {
	start := o.clock.Now()
	wall := start.Round(0)
	rec := Record{
		InstanceID: uuid.NewString(),
		PID:        pid(),
		Host:       hostname(),
		AcquiredAt: wall,
		RenewedAt:  wall,
		TTL:        ttl,
		Meta:       o.meta,
	}
	var err error
	if rec.Epoch, err = acquisitionEpoch(s, v); err != nil {
		return nil, err
	}
	data := encodeRecord(&rec)
	if len(data) > MaxRecordSize-recordGrowth {
		// Everyone else would read it as unreadable, hence free.
		return nil, errorf(ErrInvalid, "%s: meta makes the record larger than %d bytes", s.path, MaxRecordSize)
	}
	out, err := s.put(v.seq+1, data, true, nil)
	if err != nil {
		if out == won {
			// Linked but not published: give the version up so it doesn't
			// block the lease for a TTL.
			released := rec
			released.TTL = 0
			s.put(v.seq+2, encodeRecord(&released), false, nil)
		}
		return nil, err
	}
	if out != won {
		return nil, nil
	}
	l := &Lease{store: s, ttl: ttl, clock: o.clock, seq: v.seq + 1, codec: newRecordCodec(&rec, data)}
	l.setDeadline(start)
	l.record.Store(&rec)
	if l.Expired() {
		// The write took longer than the whole TTL: nobody may rely on it.
		took := o.clock.Now().Sub(start)
		l.Release()
		return nil, &overdueError{fmt.Sprintf("liblease: %s: acquiring took %v, longer than the ttl %v, so the lease was released at once",
			s.path, took, ttl)}
	}
	return l, nil
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

// inTime reports whether the version this handle wrote last, l.seq, still
// protects it from every challenger: it is an unreleased record and neither
// its monotonic deadline nor its wall-clock expiry has come. These are
// Expired's two tests, without the over flag (Release sets it before
// writing, and a renewal that lapsed gives its version up with the old
// deadline still in place, which only makes the test stricter). put asks it
// once its link of l.seq+1 returned: then no challenger can have made l.seq+1
// before that link (docs/DESIGN.md, Lemma 2a). The caller holds l.mu.
func (l *Lease) inTime() bool {
	rec := l.record.Load()
	if rec.Released() {
		return false
	}
	now := l.clock.Now()
	return now.Before(*l.deadline.Load()) && now.Round(0).Before(rec.ExpiresAt())
}

// Deadline is the instant Expired turns true unless Renew succeeds first. It
// carries a monotonic clock reading when the clock's readings do, as the
// system clock's do, so time.Until(Deadline()) is immune to wall-clock
// steps; with a clock whose readings carry none, it is a wall time (see
// Clock).
func (l *Lease) Deadline() time.Time { return *l.deadline.Load() }

// TTL is the time-to-live the lease was acquired with.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Path is the lease file's path.
func (l *Lease) Path() string { return l.store.path }

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
// instance took the lease over, when the lease's files were removed or
// replaced by hand, or when this handle's lease already expired — even if
// nobody took over, since a challenger may be about to; the caller must then
// acquire anew. Any other error leaves the handle holding until its
// deadline, and Renew may be retried.
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
		return errorf(ErrReleased, "%s", l.store.path)
	}
	if l.Expired() {
		return l.lostError()
	}
	if err := l.resolvePending(); err != nil {
		return err
	}
	if l.Expired() {
		return l.lostError()
	}

	start := l.clock.Now()
	prev := l.record.Load()
	rec := *prev
	rec.RenewedAt = start.Round(0)
	out, err := l.store.put(l.seq+1, l.codec.encode(&rec), false, l.inTime)
	if err != nil {
		l.pending = &attempt{seq: l.seq + 1, rec: rec, start: start}
		return fmt.Errorf("liblease: renewing %s: %w", l.store.path, err)
	}
	if out == removed {
		// The reason first: a watchdog that sees Expired turn true reads it.
		err := l.removedError()
		l.setLost(err)
		l.over.Store(true)
		return err
	}
	if out != won {
		return l.lostError()
	}
	if lapsed := l.advance(l.seq+1, &rec, start); lapsed {
		if l.releasing.Load() {
			return errorf(ErrReleased, "%s", l.store.path)
		}
		l.giveUp()
		return errorf(ErrLost, "%s: lease lapsed at %s while the renewal was being written",
			l.store.path, prev.ExpiresAt().Format(time.RFC3339Nano))
	}
	return nil
}

// advance records a write that won. If the lease lapsed while the write was
// under way, a watchdog may already have stopped trusting it: the handle
// stays over, and advance reports that the version it wrote must be given up.
func (l *Lease) advance(seq uint64, rec *Record, start time.Time) (lapsed bool) {
	lapsed = l.Expired()
	l.seq = seq
	l.record.Store(rec)
	if !lapsed {
		l.setDeadline(start)
	}
	// A watchdog's Expired may have seen the old deadline pass between
	// our check and the new deadline: then the handle is over all the same.
	return lapsed || l.over.Load()
}

// resolvePending finds out whether a write (renewal or release) that failed
// with an I/O error made its version after all: a later put would otherwise
// see that version and think the lease lost. Its error is Renew's.
func (l *Lease) resolvePending() error { return l.resolvePendingFor("renewing") }

// resolvePendingFor is resolvePending for the write that op ("renewing",
// "releasing") names in its error.
func (l *Lease) resolvePendingFor(op string) error {
	if l.pending == nil {
		return nil
	}
	v, err := l.store.read()
	if err != nil {
		return fmt.Errorf("liblease: %s %s: %w", op, l.store.path, err)
	}
	l.settlePending(v)
	return nil
}

// settlePending settles the pending write, if any, by v, a read made after
// it: if v's newest version is that write's, with its record, the version is
// the handle's own and the handle adopts it (if the handle lapsed meanwhile,
// it stays over, and its deadline is not moved); if a higher version or
// another record stands there, the handle is over; otherwise the write made
// nothing. The caller holds l.mu.
func (l *Lease) settlePending(v view) {
	p := l.pending
	if p == nil {
		return
	}
	l.pending = nil
	switch {
	case v.seq == p.seq && v.rec != nil && v.rec.InstanceID == p.rec.InstanceID &&
		v.rec.RenewedAt.Equal(p.rec.RenewedAt) && v.rec.TTL == p.rec.TTL:
		// It did: adopt it. If it lapsed meanwhile, Renew finds the handle
		// expired and gives it up; Release gives it up anyway.
		l.advance(p.seq, &p.rec, p.start)
	case v.seq >= p.seq:
		l.over.Store(true)
	}
}

// lostError marks the handle over and says why: who holds now, or that the
// lease lapsed with nobody else holding (then it also gives the record up,
// so a standby need not wait out a TTL for it). A version that the handle's
// own pending write made is the handle's, not another holder's: it is
// adopted and given up as well.
func (l *Lease) lostError() error {
	l.over.Store(true)
	if l.releasing.Load() {
		return errorf(ErrReleased, "%s", l.store.path)
	}
	expired := l.record.Load().ExpiresAt()
	v, err := l.store.read()
	if err == nil {
		l.settlePending(v)
	}
	if err == nil && v.seq > l.seq && v.rec != nil && !v.rec.Released() {
		return l.lostTo(v.rec)
	}
	if err == nil && v.seq == l.seq && !l.record.Load().Released() {
		l.giveUp() // once: its released record is then the newest, and ours
	}
	return errorf(ErrLost, "%s: lease expired at %s before it was renewed",
		l.store.path, expired.Format(time.RFC3339Nano))
}

// giveUp writes a released record after this handle's version, if nobody
// wrote one first. It is how a handle that stopped holding frees the lease
// at once instead of leaving it to expire.
//
// A released record frees the lease to whoever reads it, so giveUp first
// makes sure that the handle's version is still there: if cleanup removed
// it, others have built on it, and if nothing stands above it, the lease's
// files were removed or replaced by hand. Either way the handle frees
// nothing, and writes nothing that would free a lease started anew.
func (l *Lease) giveUp() error {
	if !l.store.exists(l.seq) { // a cached failed lookup may say so: list
		lst, err := l.store.list()
		if err != nil {
			return fmt.Errorf("liblease: releasing %s: %w", l.store.path, err)
		}
		if !slices.Contains(lst.versions, l.seq) {
			l.over.Store(true)
			if lst.newest > l.seq {
				return l.lostToNewest()
			}
			return l.removedError()
		}
	}
	start := l.clock.Now()
	rec := *l.record.Load()
	rec.TTL = 0
	rec.RenewedAt = start.Round(0)
	out, err := l.store.put(l.seq+1, l.codec.encode(&rec), false, l.inTime)
	if err != nil {
		l.pending = &attempt{seq: l.seq + 1, rec: rec, start: start}
		return fmt.Errorf("liblease: releasing %s: %w", l.store.path, err)
	}
	switch out {
	case removed:
		return l.removedError()
	case lost:
		return l.lostToNewest()
	}
	// Superseded: the released record was linked and someone already took
	// the lease after it (or, from a stale handle, an old name was reused:
	// that frees nothing either). Released is released.
	l.seq++
	l.record.Store(&rec)
	return nil
}

// lostToNewest is ErrLost saying who holds now, if anyone does.
func (l *Lease) lostToNewest() error {
	v, err := l.store.read()
	if err == nil && v.rec != nil && !v.rec.Released() {
		return l.lostTo(v.rec)
	}
	return errorf(ErrLost, "%s", l.store.path)
}

// lostTo is ErrLost saying that r's holder holds the lease now. A takeover
// always raises the epoch; a record above the handle's version with an epoch
// no higher than the handle's was made by an acquisition that started anew
// after the lease's files were removed or replaced by hand, and the error
// says so.
func (l *Lease) lostTo(r *Record) error {
	if r.Epoch <= l.Epoch() {
		return fmt.Errorf("%w (epoch %d, not above this holder's %d): the lease's files were removed or replaced by hand while it was held",
			heldError(ErrLost, l.store.path, r), r.Epoch, l.Epoch())
	}
	return heldError(ErrLost, l.store.path, r)
}

// removedError is ErrLost saying that the lease's files were removed or
// replaced by hand under the handle: its last version is gone, and no
// version stands above it (or the version directory is gone). The handle
// writes nothing more: a renewal or release would carry on in files that
// another acquisition may have started anew.
func (l *Lease) removedError() error {
	return errorf(ErrLost, "%s: the lease's files were removed or replaced by hand while it was held (its version %s is gone)",
		l.store.path, l.store.versionPath(l.seq))
}

// Release gives the lease up, so that a challenger may take it at once. It
// never frees someone else's lease: if another instance took over, Release
// changes nothing and returns ErrLost. The handle stops holding when Release
// is called, whatever it returns; a Release whose write failed with an I/O
// error may be retried. Releasing twice is a no-op.
//
// The released record keeps the lease's epoch, so the next acquisition
// still gets a higher one.
func (l *Lease) Release() error {
	l.releasing.Store(true)
	l.over.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	if err := l.resolvePendingFor("releasing"); err != nil {
		return err
	}
	err := l.giveUp()
	if err == nil || errors.Is(err, ErrLost) {
		l.released = true
	}
	return err
}
