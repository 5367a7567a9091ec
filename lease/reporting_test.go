package lease_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
)

// reportingStore is a MemStore whose watch is a lease.ReportingWatch:
// report, if set, says what Latest returns; else Latest returns the
// current value, as an etcd watch's event carries it. It counts Loads.
type reportingStore struct {
	*leasetest.MemStore

	mu     sync.Mutex
	loads  int
	report func(rev lease.Revision) (lease.Value, bool)
}

func (s *reportingStore) Load(ctx context.Context) (lease.Value, error) {
	s.mu.Lock()
	s.loads++
	s.mu.Unlock()
	return s.MemStore.Load(ctx)
}

func (s *reportingStore) loadCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

func (s *reportingStore) Watch(ctx context.Context) lease.Watch {
	return reportingWatch{s.MemStore.Watch(ctx), s}
}

type reportingWatch struct {
	lease.Watch
	s *reportingStore
}

func (w reportingWatch) Latest(rev lease.Revision) (lease.Value, bool) {
	w.s.mu.Lock()
	report := w.s.report
	w.s.mu.Unlock()
	if report != nil {
		return report(rev)
	}
	v, err := w.s.MemStore.Load(context.Background())
	return v, err == nil && v.Rev != rev
}

// waitAsleep waits until a standby on st has read the lease and sleeps:
// its Loads stay as they are for a while.
func waitAsleep(t *testing.T, st *reportingStore) int {
	t.Helper()
	n := -1
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := st.loadCount(); m > 0 && m == n {
			return n
		}
		n = st.loadCount()
	}
	t.Fatal("the standby did not settle")
	return 0
}

// TestWaitReportingWatch: a standby woken by a watch that reports the value
// judges that value: the released lease is taken without another Load, at
// a higher epoch.
func TestWaitReportingWatch(t *testing.T) {
	st := &reportingStore{MemStore: leasetest.NewMemStore("reporting")}
	holder, err := lease.AcquireStore(st, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan waitResult, 1)
	go func() {
		l, err := lease.WaitStore(ctx, st, time.Minute, lease.WithPollInterval(time.Hour))
		got <- waitResult{l, err}
	}()
	loads := waitAsleep(t, st)
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.l.Release()
	if n := st.loadCount(); n != loads {
		t.Errorf("%d Loads after the standby woke; want none: it judges the value reported", n-loads)
	}
	if r.l.Epoch() <= holder.Epoch() {
		t.Errorf("epoch %d after %d", r.l.Epoch(), holder.Epoch())
	}
}

// TestWaitStaleReport: a report that is stale by the time the standby judges
// it (a released record, though the lease was taken again since) costs a
// failed Swap and a Load, never the lease: the standby goes on waiting
// behind the new holder.
func TestWaitStaleReport(t *testing.T) {
	st := &reportingStore{MemStore: leasetest.NewMemStore("stale")}
	first, err := lease.AcquireStore(st, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	released, err := st.MemStore.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	holder, err := lease.AcquireStore(st, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	st.mu.Lock()
	st.report = func(rev lease.Revision) (lease.Value, bool) { return released, rev != released.Rev }
	st.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan waitResult, 1)
	go func() {
		l, err := lease.WaitStore(ctx, st, time.Minute, lease.WithPollInterval(50*time.Millisecond))
		got <- waitResult{l, err}
	}()
	select {
	case r := <-got:
		if r.l != nil {
			r.l.Release()
		}
		t.Fatalf("the standby returned %v, %v while the lease was held", r.l, r.err)
	case <-time.After(time.Second):
	}
	if n := st.loadCount(); n < 3 {
		t.Errorf("%d Loads in a second of 50ms polls with a stale report each time; want more", n)
	}
	cancel()
	if r := <-got; r.l != nil {
		r.l.Release()
		t.Fatal("the standby took the held lease")
	}
}
