package leasetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// MemStore is a lease.Store in memory, for tests: a register whose Swap is
// a compare-and-swap under a mutex, with faults injected on demand. It is a
// lease.Watcher whose watch reports every change. It is safe for
// concurrent use; it cannot be shared between processes.
type MemStore struct {
	name string

	// Before, if not nil, is called before every call of the store (never
	// with the store's lock held) and says what fault to inject in it.
	// It may block, for example to move a fake clock or to let another
	// writer run first.
	// Set it before the store is in use, or while no call is under way.
	Before func(ctx context.Context, c Call) Fault

	mu      sync.Mutex
	rev     uint64
	data    []byte
	floor   uint64
	changed chan struct{} // closed and replaced at every change
	calls   int
}

// Call describes one call of a MemStore to its Before hook.
type Call struct {
	Op   string // "load" or "swap"
	Old  lease.Revision
	Data []byte // a swap's data; do not modify it
	N    int    // the count of calls so far, this one included
}

// Fault is what a MemStore does wrong in one call. The zero Fault does
// nothing wrong.
type Fault struct {
	// Delay makes the call wait this long before it acts, or fail with
	// ctx.Err() without acting if its context ends first.
	Delay time.Duration
	// Hang makes the call wait until its context ends, then fail with
	// ctx.Err() without acting.
	Hang bool
	// Err makes the call fail with Err without acting.
	Err error
	// LoseReply makes a Swap act, and then fail with ErrLostReply, as if
	// the server's reply were lost: the outcome is unknown to the caller.
	// A Swap that lost the comparison fails with ErrLostReply too.
	LoseReply bool
}

// ErrLostReply is the error of a call whose reply a Fault lost.
var ErrLostReply = errors.New("leasetest: the reply was lost")

// NewMemStore returns an empty MemStore; name is what String returns.
func NewMemStore(name string) *MemStore {
	return &MemStore{name: name, changed: make(chan struct{})}
}

func (m *MemStore) String() string { return "mem:" + m.name }

// fault runs the Before hook and the waits it asks for. It returns the
// fault, or an error the call must fail with before acting.
func (m *MemStore) fault(ctx context.Context, c Call) (Fault, error) {
	m.mu.Lock()
	m.calls++
	c.N = m.calls
	before := m.Before
	m.mu.Unlock()
	if before == nil {
		return Fault{}, ctx.Err()
	}
	f := before(ctx, c)
	if f.Hang {
		<-ctx.Done()
		return f, ctx.Err()
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-t.C:
		}
	}
	if f.Err != nil {
		return f, f.Err
	}
	return f, ctx.Err()
}

// Load returns the current value. Its Floor is the number of writes so
// far, which no epoch the protocol writes exceeds (or what SetFloor set).
func (m *MemStore) Load(ctx context.Context) (lease.Value, error) {
	if _, err := m.fault(ctx, Call{Op: "load"}); err != nil {
		return lease.Value{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v := lease.Value{Floor: max(m.rev, m.floor)}
	if m.rev > 0 {
		v.Rev = lease.Revision(strconv.FormatUint(m.rev, 10))
		v.Data = bytes.Clone(m.data[:min(len(m.data), lease.MaxRecordSize+1)])
	}
	return v, nil
}

// Swap replaces the value at old by data.
func (m *MemStore) Swap(ctx context.Context, old lease.Revision, data []byte, w lease.Write) (lease.Revision, error) {
	f, err := m.fault(ctx, Call{Op: "swap", Old: old, Data: data})
	if err != nil {
		return "", err
	}
	if len(data) > lease.MaxRecordSize {
		return "", fmt.Errorf("%s: %d bytes is more than a record may have", m, len(data))
	}
	m.mu.Lock()
	cur := ""
	if m.rev > 0 {
		cur = strconv.FormatUint(m.rev, 10)
	}
	if string(old) != cur {
		m.mu.Unlock()
		if f.LoseReply {
			return "", ErrLostReply
		}
		return "", fmt.Errorf("%w: %s is at revision %q, not %q", lease.ErrConflict, m, cur, old)
	}
	m.rev++
	m.data = bytes.Clone(data)
	rev := lease.Revision(strconv.FormatUint(m.rev, 10))
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	if f.LoseReply {
		return "", ErrLostReply
	}
	return rev, nil
}

// Set replaces the value by data, whatever it is, as a hand edit would:
// data may be anything, of any size.
func (m *MemStore) Set(data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	m.data = bytes.Clone(data)
	close(m.changed)
	m.changed = make(chan struct{})
}

// SetFloor raises the Floor that Load reports to at least floor.
func (m *MemStore) SetFloor(floor uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.floor = max(m.floor, floor)
}

// Watch watches the register: a MemStore reports every change.
func (m *MemStore) Watch(ctx context.Context) lease.Watch { return memWatch{m} }

type memWatch struct{ m *MemStore }

func (memWatch) Complete() bool { return true }
func (memWatch) Close()         {}

// Ahead reports whether the value changed since rev.
func (w memWatch) Ahead(rev lease.Revision) bool {
	_, cur := w.state()
	return cur != rev
}

func (w memWatch) state() (<-chan struct{}, lease.Revision) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	var cur lease.Revision
	if w.m.rev > 0 {
		cur = lease.Revision(strconv.FormatUint(w.m.rev, 10))
	}
	return w.m.changed, cur
}

// Sleep returns once the value is no longer at rev, or timeout fires.
func (w memWatch) Sleep(ctx context.Context, rev lease.Revision, timeout <-chan time.Time) error {
	for {
		ch, cur := w.state()
		if cur != rev {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return nil
		case <-ch:
		}
	}
}

// RandomFaults returns a Before hook for a MemStore that injects a fault
// into about rate of the calls, drawn from seed: an error, a lost reply, or
// a delay of up to 2ms. It is safe for concurrent use.
func RandomFaults(seed uint64, rate float64) func(context.Context, Call) Fault {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(_ context.Context, c Call) Fault {
		mu.Lock()
		defer mu.Unlock()
		if rng.Float64() >= rate {
			return Fault{}
		}
		switch rng.IntN(3) {
		case 0:
			return Fault{Err: fmt.Errorf("leasetest: injected failure of call %d (%s)", c.N, c.Op)}
		case 1:
			return Fault{LoseReply: c.Op == "swap", Err: errIfLoad(c)}
		default:
			return Fault{Delay: time.Duration(rng.Int64N(int64(2 * time.Millisecond)))}
		}
	}
}

// errIfLoad is the error of a load whose reply was lost.
func errIfLoad(c Call) error {
	if c.Op == "load" {
		return ErrLostReply
	}
	return nil
}
