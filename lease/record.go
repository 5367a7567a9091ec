package lease

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"syscall"
	"time"
)

// Record is the on-disk lease state. PID and Host are informational (the
// lease is enforced by TTL, not by process checks); InstanceID is the holder's
// fencing token and Epoch the number a protected resource compares. Meta
// carries optional holder-supplied discovery data — e.g. the endpoint a
// serving owner advertises to followers — so "who and where" stays one atomic
// read.
//
// A released record keeps the last holder's fields and has a TTL of zero.
//
// Readers ignore fields they do not know, so that a record written by a
// later build, with fields added, is still a record to an earlier one.
type Record struct {
	InstanceID string            `json:"instance_id"`
	PID        int               `json:"pid"`
	Host       string            `json:"host"`
	AcquiredAt time.Time         `json:"acquired_at"`
	RenewedAt  time.Time         `json:"renewed_at"`
	TTL        time.Duration     `json:"ttl"`
	Meta       map[string]string `json:"meta,omitempty"`
	// Epoch strictly increases with every acquisition of the path: across
	// takeover, expiry and release.
	Epoch uint64 `json:"epoch"`
	// Slot is the last slot of a schedule in which an acquisition made
	// with WithOncePer took the lease to run: nil if there was none. Every
	// write of the protocol carries it forward, an acquisition made
	// without WithOncePer too, so that the record keeps it until a later
	// slot's run replaces it. Records written before slots existed have
	// none, and builds from before then ignore it (and drop it when they
	// acquire).
	Slot *Slot `json:"slot,omitempty"`
}

// Slot is one slot of a schedule that runs at most once per slot (see
// WithOncePer): the last one that ran, kept in the record.
type Slot struct {
	// Start is the slot's first instant, in UTC: a multiple of Length
	// since the Unix epoch (SlotOf).
	Start time.Time `json:"start"`
	// Length is the slot's length, the WithOncePer duration.
	Length time.Duration `json:"length"`
	// Epoch is the epoch of the acquisition that ran in the slot.
	Epoch uint64 `json:"epoch"`
	// ExitStatus is the status the run ended with, as its holder gave it
	// when it released the lease (ReleaseWithStatus): nil while it runs,
	// and for good if it never released (it crashed, or lost the lease).
	ExitStatus *int `json:"exit_status,omitempty"`
}

// End is the instant after the slot.
func (s *Slot) End() time.Time { return s.Start.Add(s.Length) }

// SlotOf returns the start of the slot of length every that holds t: slots
// are aligned to the Unix epoch, in UTC, so that every host computes the
// same ones (every 24h starts at midnight UTC, every 1h on the hour). every
// must be positive.
func SlotOf(t time.Time, every time.Duration) time.Time {
	ns := t.UnixNano()
	r := ns % int64(every)
	if r < 0 {
		r += int64(every)
	}
	return time.Unix(0, ns-r).UTC()
}

// Released reports whether the holder gave the lease up.
func (r *Record) Released() bool { return r.TTL == 0 }

// ExpiresAt is the wall-clock instant the record stops protecting its holder:
// RenewedAt+TTL. For a released record it is RenewedAt.
func (r *Record) ExpiresAt() time.Time { return r.RenewedAt.Add(r.TTL) }

// clone returns a deep copy, so a caller can't reach the handle's Meta or
// Slot.
func (r Record) clone() Record {
	r.Meta = maps.Clone(r.Meta)
	if r.Slot != nil {
		s := *r.Slot
		if s.ExitStatus != nil {
			code := *s.ExitStatus
			s.ExitStatus = &code
		}
		r.Slot = &s
	}
	return r
}

// MaxRecordSize bounds what a read loads into memory. A file larger than this
// is unreadable, and an unreadable lease is free.
const MaxRecordSize = 64 << 10

// recordGrowth is how much a record may grow after acquisition: a renewal
// changes only RenewedAt, whose RFC 3339 form gains at most ".999999999".
const recordGrowth = 16

// errUnreadable marks bytes that are not a lease record. It never leaves the
// package: an unreadable record means a free lease, not an error.
var errUnreadable = errors.New("not a lease record")

// decodeRecord parses one record. It accepts exactly one JSON object of
// Record's shape and rejects anything else (empty, truncated, garbage, other
// JSON, trailing bytes, impossible values) with errUnreadable.
func decodeRecord(data []byte) (*Record, error) {
	if len(data) > MaxRecordSize {
		return nil, errUnreadable
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var r Record
	if err := dec.Decode(&r); err != nil {
		return nil, errUnreadable
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errUnreadable
	}
	if r.InstanceID == "" || r.TTL < 0 || r.Epoch == 0 || r.RenewedAt.IsZero() || r.AcquiredAt.IsZero() {
		return nil, errUnreadable
	}
	if s := r.Slot; s != nil && (s.Length <= 0 || s.Start.IsZero() || s.Epoch == 0) {
		// A slot no writer of this package makes: the lease is readable
		// all the same (a hand-made slot must not free a held lease), and
		// the slot counts as none.
		r.Slot = nil
	}
	return &r, nil
}

func encodeRecord(r *Record) []byte {
	data, err := json.Marshal(r)
	if err != nil {
		// Record holds only strings, numbers and valid times: Marshal can't fail.
		panic("lease: encoding record: " + err.Error())
	}
	return append(data, '\n')
}

// readFileBounded reads at most MaxRecordSize+1 bytes of name, enough to
// tell an oversized file from a record without loading it.
func readFileBounded(name string) ([]byte, error) {
	return retryStale(func() ([]byte, error) { return readBounded(name) })
}

// staleTries bounds retryStale.
const staleTries = 5

// retryStale runs op again while it fails with ESTALE. A network filesystem
// (NFS, sshfs) answers ESTALE when a name it had looked up was replaced or
// removed on the server meanwhile, as PATH is by every write and old
// versions by cleanup; a fresh lookup then finds the current file.
func retryStale[T any](op func() (T, error)) (T, error) {
	for i := 1; ; i++ {
		v, err := op()
		if i == staleTries || !errors.Is(err, syscall.ESTALE) {
			return v, err
		}
	}
}
