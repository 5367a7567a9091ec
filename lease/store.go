package lease

import (
	"context"
	"errors"
	"time"
)

// Store keeps the record of one lease in a register whose every write is a
// compare-and-swap its server enforces. The protocol of this package
// (Acquire, Renew, Release, Wait, Read and their Store forms) is written
// once over it; a Store supplies only the register. Files is the first
// Store; others (object storage with conditional writes, etcd) live in
// packages of their own, and package lease/leasetest checks any of them
// against what the protocol needs.
//
// Nothing a Store does may rest on a client-side lock, on a read followed
// by a write, or on the clocks of two hosts agreeing: only on what its
// server enforces. docs/DESIGN.md proves the protocol safe from the
// contract below and nothing else.
//
// A Store is used by many handles and goroutines at once, and by other
// processes and hosts through the same location: it keeps no state about
// the lease between calls that a decision could rest on. Every call gets a
// context with a deadline; a Store whose calls can block (a network) must
// return once it ends, with an error that leaves the outcome unknown if it
// cannot tell.
type Store interface {
	// Load returns the current value: the one the newest write that took
	// effect left. Value{} (a zero Rev) means there is none yet. Data need
	// not be a record (a hand-made or damaged one): the protocol counts
	// such a value as a free lease, never as an error. Load never returns
	// more than MaxRecordSize+1 bytes of Data, however large the stored
	// value. It may return an older value (a cache the server does not
	// vouch for): a decision made on it ends in a Swap at a revision that
	// is no longer current, which fails (docs/DESIGN.md, Lemma 3), so a
	// stale Load costs time, never safety.
	//
	// An error means the register could not be read (permission denied,
	// a missing bucket, a network failure): never a free lease.
	Load(ctx context.Context) (Value, error)

	// Swap replaces the value at revision old by data, which is at most
	// MaxRecordSize bytes, and returns the new value's revision. With a
	// zero old it creates the first value, if there is none. What it
	// returns says what happened:
	//
	//   - nil: this write replaced exactly old. It took effect, and other
	//     writes may already have replaced it in turn.
	//   - an error wrapping ErrConflict: it did not take effect; another
	//     write replaced old first (or old was never the current value).
	//   - an error wrapping ErrRemoved: it did not take effect (or was
	//     undone), because the value at old is gone and no write of the
	//     protocol replaced it: the register was removed or replaced by
	//     hand. The writer writes nothing more there. A store that cannot
	//     tell this from a conflict reports ErrConflict.
	//   - any other error: it may or may not have taken effect, perhaps
	//     later than Swap returned. The protocol finds out with Load: every
	//     data it writes is unique (it holds a fresh InstanceID and a
	//     nanosecond timestamp), so a Load that returns exactly data shows
	//     this write.
	//
	// The server must enforce the comparison: of any number of writers
	// swapping at one revision, anywhere, at most one succeeds, and a
	// writer whose old is no longer the current value fails.
	Swap(ctx context.Context, old Revision, data []byte, w Write) (Revision, error)

	// String names the location, for messages and logs: a path or a URL,
	// never a secret.
	String() string
}

// Revision identifies one value of a Store's register. It is opaque: only
// the Store that returned it may interpret it. Equal revisions returned by
// Load or Swap of one Store are the same write; the zero Revision ("") is
// the register before its first write. Files: the version number.
type Revision string

// Value is what a Store's Load returns.
type Value struct {
	// Rev is the revision of this value; zero when there is none.
	Rev Revision
	// Data is the value's bytes: the record as the protocol wrote it, or
	// whatever else stands there (the protocol reads that as a free
	// lease). At most MaxRecordSize+1 bytes.
	Data []byte
	// Floor is a number that no epoch written to this register so far
	// exceeds, or 0 if the store cannot say. The protocol uses it only
	// when Data is not a record (absent, damaged, hand-made): the next
	// acquisition then takes Floor+1, so that epochs never go back even
	// when a record is lost. Files: the version number (and the epoch of
	// the published copy PATH, if higher); a store with a global revision
	// counter (etcd) can give that.
	Floor uint64
}

// Write is what the protocol says about one Swap.
type Write struct {
	// Durable asks that the write survive a power loss of the server once
	// Swap returned nil: an acquisition's, whose epoch must never come back
	// lower. Renewals and releases need not be durable, and they are the
	// protocol's only writes that are not: a write that is not durable
	// replaces a value that stands, the writer's own or one it loaded, so
	// a store may take the value's absence as the register's removal by
	// hand (files: such a write never creates PATH.d).
	Durable bool
}

// ErrConflict is wrapped by a Store's Swap when the write did not take
// effect because another write replaced the value first.
var ErrConflict = errors.New("liblease: another writer changed the lease first")

// ErrRemoved is wrapped by a Store's Swap when the write did not take
// effect because the value it was to replace is gone, removed or replaced
// by hand rather than by a write of the protocol (files: the holder's
// version, or PATH.d, was deleted).
var ErrRemoved = errors.New("liblease: the lease's record was removed or replaced by hand")

// A Watcher is a Store that can tell Wait of changes to its register, so
// that a standby wakes when the lease changes rather than at its next
// poll. Wait finds it by a type assertion; a Store without it is polled.
type Watcher interface {
	// Watch starts watching the register for Wait. It returns nil where it
	// cannot watch (Wait then polls). ctx is Wait's: the watch may end
	// with it, and Wait calls Close in any case.
	Watch(ctx context.Context) Watch
}

// Watch is one watch of a register, used by one Wait from one goroutine.
// It is a hint: Wait writes only through Swap, and but for a
// ReportingWatch's values reads the lease with Load, so a watch that
// misses or invents changes costs time, never safety.
type Watch interface {
	// Complete reports whether every change is reported now, so that
	// polling only guards against a lost report: Wait then polls once a
	// TTL (at most 30s) rather than ten times (at least every second).
	// Wait calls it before each Load: a watch that lost what it watched
	// may put it back then, so that it reports what comes after the Load.
	Complete() bool
	// Ahead reports whether a write after the value at rev is known to
	// have been made already, whose report will wake Sleep: Wait then
	// sleeps rather than make a Swap that must lose. Files: the next
	// version exists, made by another standby woken by the same change.
	Ahead(rev Revision) bool
	// Sleep returns nil once a change after the value at rev may have
	// been made, or once timeout fires, and ctx.Err() once ctx ends.
	Sleep(ctx context.Context, rev Revision, timeout <-chan time.Time) error
	// Close ends the watch. It must not wait long: the new holder that
	// Wait returns waits for it.
	Close()
}

// A ReportingWatch is a Watch whose reports carry the register's value, as
// etcd's watch events do. After a Sleep, Wait judges the value of the
// newest report rather than Load the register again: a standby woken by a
// release makes its acquisition's Swap at once. Unlike a Watch's wake-ups,
// its values are trusted as a Load's are: a reported value must be one the
// register really held at its revision, with a Floor no lower than a Load
// of it could have returned. Only its staleness is harmless.
type ReportingWatch interface {
	Watch
	// Latest returns the value that the newest report showed, if it is
	// of a write after the value at rev (for rev "", after the last
	// Complete), and the watch is not broken now; ok is false
	// otherwise. The value is what Load would have returned when the
	// report was made: its Floor bounds every epoch written until then.
	// It may be stale by the time Wait judges it, as a Load's may be: a
	// Swap at its revision then fails.
	Latest(rev Revision) (v Value, ok bool)
}
