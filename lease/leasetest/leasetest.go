// Package leasetest checks a lease.Store against what the protocol of
// package lease needs from it, as testing/fstest checks an fs.FS:
//
//	func TestMyStore(t *testing.T) {
//		leasetest.TestStore(t, leasetest.Config{
//			New:  func(t *testing.T) string { return newKey(t) }, // a fresh register
//			Open: func(location string) (lease.Store, error) { return mystore.Open(location) },
//		})
//	}
//
// TestStore checks the register: a first write creates only where there
// is none, exactly one of any number of racing writers at one revision
// wins, a stale writer is refused with lease.ErrConflict, a Load after a
// won Swap sees it, an outcome left unknown can be told by Load, data
// round-trips (up to lease.MaxRecordSize), and reads of hostile data are
// bounded. Then it runs the protocol itself over the store: Acquire,
// Renew, Release, Wait and Read, and races of many workers, as goroutines
// and as OS processes, whose believed-held intervals must never overlap.
//
// MemStore is a store in memory with injected faults (lost replies, slow
// and hung calls, errors), for fast tests of code that uses leases.
package leasetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// Config describes the store under test to TestStore.
type Config struct {
	// New returns the location of a new register with no value yet.
	New func(t *testing.T) string
	// Open returns a store of the register at location. Stores opened at
	// one location are one register: in this process, and in others
	// unless Processes is negative.
	Open func(location string) (lease.Store, error)
	// Plant, if not nil, makes data the current value of the register at
	// location by the back door, as a hand edit or damage would: data may
	// be anything, of any size. The tests of hostile data need it.
	Plant func(t *testing.T, location string, data []byte)

	// Goroutines is how many goroutines race the protocol in this process
	// (default 6); negative skips that race.
	Goroutines int
	// Processes is how many OS processes race the protocol (default 6);
	// negative skips that race, for a store other processes cannot reach
	// (MemStore). The processes re-execute the test binary and run the
	// test that called TestStore up to that call (see RaceWorker).
	Processes int
	// Duration is how long each race runs (default 3s; 1s with -short).
	Duration time.Duration
	// TTLMin and TTLMax bound the races' TTLs (default 50ms and 200ms):
	// room for the store's latency.
	TTLMin, TTLMax time.Duration
	// Faults says that the store fails now and then by design (a MemStore
	// with random faults): a Swap's error other than ErrConflict is then
	// resolved by Load rather than failing the test, and the races count
	// such errors rather than failing.
	Faults bool
}

// callTimeout bounds each call of the store in the register tests.
const callTimeout = 10 * time.Second

// TestStore runs the conformance tests of cfg's store, each as a subtest.
func TestStore(t *testing.T, cfg Config) {
	if cfg.New == nil || cfg.Open == nil {
		t.Fatal("leasetest.Config needs New and Open")
	}
	s := &suite{cfg: cfg}
	if RaceWorker() {
		// Only the race of processes runs here (-test.run says so).
		t.Run("RaceProcesses", func(t *testing.T) { Race(t, RaceConfig{Open: cfg.Open}) })
		return
	}
	t.Run("Empty", s.testEmpty)
	t.Run("CreateIfAbsent", s.testCreateIfAbsent)
	t.Run("Chain", s.testChain)
	t.Run("TwoHandles", s.testTwoHandles)
	t.Run("OneWinner", s.testOneWinner)
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("Hostile", s.testHostile)
	t.Run("Protocol", s.testProtocol)
	t.Run("ReportingWatch", s.testReportingWatch)
	t.Run("RaceGoroutines", func(t *testing.T) { s.race(t, false, cfg.Goroutines) })
	t.Run("RaceProcesses", func(t *testing.T) { s.race(t, true, cfg.Processes) })
}

type suite struct{ cfg Config }

func (s *suite) open(t *testing.T, loc string) lease.Store {
	t.Helper()
	st, err := s.cfg.Open(loc)
	if err != nil {
		t.Fatalf("Open(%q): %v", loc, err)
	}
	if st == nil {
		t.Fatalf("Open(%q) returned nil", loc)
	}
	return st
}

func (s *suite) fresh(t *testing.T) (string, lease.Store) {
	t.Helper()
	loc := s.cfg.New(t)
	return loc, s.open(t, loc)
}

// load loads st, retrying errors if the store injects faults.
func (s *suite) load(t *testing.T, st lease.Store) lease.Value {
	t.Helper()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		v, err := st.Load(ctx)
		cancel()
		if err == nil {
			if len(v.Data) > lease.MaxRecordSize+1 {
				t.Fatalf("%s: Load returned %d bytes, more than MaxRecordSize+1", st, len(v.Data))
			}
			if v.Rev == "" && len(v.Data) > 0 {
				t.Fatalf("%s: Load returned data at the zero revision", st)
			}
			return v
		}
		if !s.cfg.Faults || i == 100 {
			t.Fatalf("%s: Load: %v", st, err)
		}
	}
}

// swap swaps data in at old and reports whether the write took effect:
// nil from Swap says yes, ErrConflict says no, and any other error (only
// with Faults) is resolved by Load, as the protocol resolves it: data is
// unique, so the write took effect if Load shows data, and did not if Load
// shows something else; if that is still the value at old, it is tried
// again.
func (s *suite) swap(t *testing.T, st lease.Store, old lease.Revision, data []byte, w lease.Write) (lease.Revision, bool) {
	t.Helper()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		rev, err := st.Swap(ctx, old, data, w)
		cancel()
		switch {
		case err == nil:
			if rev == "" || rev == old {
				t.Fatalf("%s: Swap at %q returned revision %q", st, old, rev)
			}
			return rev, true
		case errors.Is(err, lease.ErrConflict):
			return "", false
		case !s.cfg.Faults || i == 100:
			t.Fatalf("%s: Swap at %q: %v", st, old, err)
		}
		v := s.load(t, st)
		if bytes.Equal(v.Data, data) {
			return v.Rev, true
		}
		if v.Rev != old {
			return "", false
		}
	}
}

// uniq returns data no other write of the test makes, of at least n bytes.
func uniq(t *testing.T, n int) []byte {
	id := fmt.Sprintf(`{"test":%q,"at":%d}`, t.Name(), time.Now().UnixNano())
	if len(id) >= n {
		return []byte(id)
	}
	return []byte(id + strings.Repeat(" ", n-len(id)))
}

func (s *suite) testEmpty(t *testing.T) {
	_, st := s.fresh(t)
	if v := s.load(t, st); v.Rev != "" || len(v.Data) != 0 {
		t.Fatalf("a new register loads as revision %q with %d bytes, want the zero Value", v.Rev, len(v.Data))
	}
	if st.String() == "" {
		t.Error("String is empty")
	}
}

func (s *suite) testCreateIfAbsent(t *testing.T) {
	_, st := s.fresh(t)
	d1 := uniq(t, 10)
	r1, ok := s.swap(t, st, "", d1, lease.Write{Durable: true})
	if !ok {
		t.Fatal("the first Swap at the zero revision did not take effect")
	}
	if v := s.load(t, st); v.Rev != r1 || !bytes.Equal(v.Data, d1) {
		t.Fatalf("Load after the first Swap: revision %q, %q; want %q, %q", v.Rev, v.Data, r1, d1)
	}
	d2 := uniq(t, 10)
	if _, ok := s.swap(t, st, "", d2, lease.Write{Durable: true}); ok {
		t.Fatal("a second Swap at the zero revision took effect: create must be if absent")
	}
	if v := s.load(t, st); v.Rev != r1 || !bytes.Equal(v.Data, d1) {
		t.Fatalf("Load after a refused create: revision %q, %q; want %q, %q", v.Rev, v.Data, r1, d1)
	}
}

func (s *suite) testChain(t *testing.T) {
	_, st := s.fresh(t)
	var (
		rev  lease.Revision
		revs = map[lease.Revision]bool{"": true}
		hist []lease.Revision
	)
	for i := range 40 {
		data := uniq(t, 50+i)
		next, ok := s.swap(t, st, rev, data, lease.Write{Durable: i%7 == 0})
		if !ok {
			t.Fatalf("write %d at the current revision %q did not take effect", i, rev)
		}
		if revs[next] {
			t.Fatalf("write %d: revision %q again", i, next)
		}
		revs[next] = true
		if v := s.load(t, st); v.Rev != next || !bytes.Equal(v.Data, data) {
			t.Fatalf("Load after write %d: revision %q, %q; want %q, %q", i, v.Rev, v.Data, next, data)
		}
		hist = append(hist, rev)
		rev = next
		// Every revision before the current one is stale.
		for _, old := range []lease.Revision{hist[len(hist)-1], hist[len(hist)/2], ""} {
			stale := uniq(t, 60)
			if _, ok := s.swap(t, st, old, stale, lease.Write{}); ok {
				t.Fatalf("a Swap at the stale revision %q took effect after write %d (current %q)", old, i, rev)
			}
		}
		if v := s.load(t, st); v.Rev != rev || !bytes.Equal(v.Data, data) {
			t.Fatalf("Load after stale writes: revision %q; want %q", v.Rev, rev)
		}
	}
}

func (s *suite) testTwoHandles(t *testing.T) {
	loc, a := s.fresh(t)
	b := s.open(t, loc)
	da := uniq(t, 20)
	ra, ok := s.swap(t, a, "", da, lease.Write{})
	if !ok {
		t.Fatal("create through the first handle did not take effect")
	}
	if v := s.load(t, b); v.Rev != ra || !bytes.Equal(v.Data, da) {
		t.Fatalf("the second handle loads %q, %q; want %q, %q", v.Rev, v.Data, ra, da)
	}
	db := uniq(t, 20)
	rb, ok := s.swap(t, b, ra, db, lease.Write{})
	if !ok {
		t.Fatal("a swap through the second handle did not take effect")
	}
	if _, ok := s.swap(t, a, ra, uniq(t, 20), lease.Write{}); ok {
		t.Fatal("the first handle's stale swap took effect after the second handle's")
	}
	if v := s.load(t, a); v.Rev != rb || !bytes.Equal(v.Data, db) {
		t.Fatalf("the first handle loads %q, %q; want %q, %q", v.Rev, v.Data, rb, db)
	}
}

// testOneWinner: writers racing at one revision, each through its own
// handle, have at most one winner, and the register then holds its data.
func (s *suite) testOneWinner(t *testing.T) {
	const writers, rounds = 8, 25
	loc, st := s.fresh(t)
	handles := make([]lease.Store, writers)
	for i := range handles {
		handles[i] = s.open(t, loc)
	}
	var rev lease.Revision
	var cur []byte
	for round := range rounds {
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			datas = make([][]byte, writers)
			errs  = make([]error, writers)
			revs  = make([]lease.Revision, writers)
		)
		for i := range writers {
			datas[i] = uniq(t, 40+i)
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				defer cancel()
				revs[i], errs[i] = handles[i].Swap(ctx, rev, datas[i], lease.Write{Durable: true})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both won at revision %q", round, winner, i, rev)
				}
				winner = i
			case errors.Is(err, lease.ErrConflict):
			case !s.cfg.Faults:
				t.Fatalf("round %d: writer %d: %v, want nil or ErrConflict", round, i, err)
			}
		}
		v := s.load(t, st)
		if winner >= 0 {
			if v.Rev != revs[winner] || !bytes.Equal(v.Data, datas[winner]) {
				t.Fatalf("round %d: writer %d won revision %q but Load shows %q, %q", round, winner, revs[winner], v.Rev, v.Data)
			}
		} else {
			// No reply said so, but a write whose outcome is unknown may
			// have won: then exactly its data stands.
			known := bytes.Equal(v.Data, cur) && v.Rev == rev
			for i, err := range errs {
				if err != nil && !errors.Is(err, lease.ErrConflict) && bytes.Equal(v.Data, datas[i]) {
					known = true
				}
			}
			if !known {
				t.Fatalf("round %d: no writer won, but Load shows %q, %q, written by none", round, v.Rev, v.Data)
			}
			if v.Rev == rev {
				// Nobody took effect: the round is tried again from here.
				continue
			}
		}
		rev, cur = v.Rev, v.Data
	}
}

func (s *suite) testRoundTrip(t *testing.T) {
	_, st := s.fresh(t)
	binary := make([]byte, 4096)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	max := uniq(t, lease.MaxRecordSize)
	for i := range max {
		if i > 100 {
			max[i] = byte('a' + i%26)
		}
	}
	var rev lease.Revision
	for _, data := range [][]byte{uniq(t, 1), append(uniq(t, 1), binary...), append(uniq(t, 1), "\x00\xff\n\r\"\\"...), max} {
		next, ok := s.swap(t, st, rev, data, lease.Write{})
		if !ok {
			t.Fatalf("a Swap of %d bytes did not take effect", len(data))
		}
		if v := s.load(t, st); v.Rev != next || !bytes.Equal(v.Data, data) {
			t.Fatalf("Load after a Swap of %d bytes: revision %q, %d bytes (equal %v); want %q", len(data), v.Rev, len(v.Data), bytes.Equal(v.Data, data), next)
		}
		rev = next
	}
}

// testHostile: data the protocol did not write loads bounded, and reads as
// a free lease.
func (s *suite) testHostile(t *testing.T) {
	if s.cfg.Plant == nil {
		t.Skip("no Config.Plant")
	}
	huge := bytes.Repeat([]byte("x"), 4*lease.MaxRecordSize)
	record := `{"instance_id":"x","pid":1,"host":"h","acquired_at":"2030-01-01T00:00:00Z","renewed_at":"2999-01-01T00:00:00Z","ttl":1000000000000,"epoch":7}`
	for name, data := range map[string][]byte{
		"huge":           huge,
		"huge record":    append([]byte(record[:len(record)-1]), append(bytes.Repeat([]byte(" "), 2*lease.MaxRecordSize), '}')...),
		"garbage":        []byte("{garbage"),
		"other json":     []byte(`{"a":[1,2,3]}`),
		"empty":          {},
		"trailing bytes": []byte(record + "x"),
	} {
		t.Run(name, func(t *testing.T) {
			loc, st := s.fresh(t)
			s.cfg.Plant(t, loc, data)
			v := s.load(t, st)
			if len(data) > 0 && v.Rev == "" {
				t.Fatal("a planted value loads as none")
			}
			var status lease.Status
			s.retry(t, "ReadStore over hostile data", func() (err error) {
				status, err = lease.ReadStore(context.Background(), st)
				return err
			})
			if status.State != lease.StateFree {
				t.Fatalf("ReadStore over hostile data: %v, want free", status.State)
			}
			var l *lease.Lease
			s.retry(t, "AcquireStore over hostile data (the lease is free)", func() (err error) {
				l, err = lease.AcquireStore(st, time.Minute)
				return err
			})
			if l.Epoch() == 0 {
				t.Fatal("epoch 0")
			}
			s.retry(t, "Release", l.Release)
		})
	}
}

// testProtocol runs the lease over the store, one step at a time.
func (s *suite) testProtocol(t *testing.T) {
	const ttl = time.Minute
	loc, st := s.fresh(t)
	other := s.open(t, loc)
	ctx := context.Background()
	retry := func(what string, f func() error) { t.Helper(); s.retry(t, what, f) }
	var l *lease.Lease
	retry("AcquireStore", func() (err error) { l, err = lease.AcquireStore(st, ttl); return err })
	s.expect(t, "a second AcquireStore", lease.ErrHeld, func() error {
		_, err := lease.AcquireStore(other, ttl)
		return err
	})
	var status lease.Status
	retry("ReadStore", func() (err error) { status, err = lease.ReadStore(ctx, other); return err })
	if status.State != lease.StateHeld || status.Record.InstanceID != l.InstanceID() || status.Record.Epoch != l.Epoch() {
		t.Fatalf("ReadStore = %s %+v, want held by %s", status.State, status.Record, l.InstanceID())
	}
	for range 3 {
		retry("Renew", l.Renew)
	}
	if l.Expired() {
		t.Fatal("Expired after Renew")
	}
	retry("Release", l.Release)
	retry("ReadStore", func() (err error) { status, err = lease.ReadStore(ctx, other); return err })
	if status.State != lease.StateReleased || status.Record.Epoch != l.Epoch() {
		t.Fatalf("ReadStore after Release = %s %+v, want released at epoch %d", status.State, status.Record, l.Epoch())
	}
	var w *lease.Lease
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	retry("WaitStore", func() (err error) { w, err = lease.WaitStore(wctx, other, ttl); return err })
	if w.Epoch() <= l.Epoch() {
		t.Fatalf("the epoch went from %d to %d", l.Epoch(), w.Epoch())
	}
	if err := l.Renew(); !errors.Is(err, lease.ErrReleased) {
		t.Fatalf("Renew after Release: %v, want ErrReleased", err)
	}
	// A standby waiting on a held lease gives up with its context.
	s.expect(t, "WaitStore on a held lease", context.DeadlineExceeded, func() error {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := lease.WaitStore(short, st, ttl)
		if err != nil && errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("WaitStore on a held lease: %v, want ErrHeld and DeadlineExceeded", err)
		}
		return err
	})
	retry("Release", w.Release)
}

// retry calls f until it succeeds, failing t on an error; with Faults, it
// tries again after an error that is not ErrHeld or ErrLost.
func (s *suite) retry(t *testing.T, what string, f func() error) {
	t.Helper()
	for i := 0; ; i++ {
		err := f()
		if err == nil {
			return
		}
		if !s.cfg.Faults || errors.Is(err, lease.ErrLost) || errors.Is(err, lease.ErrHeld) || i == 50 {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// expect calls f until it fails with want, failing t on any other
// outcome; with Faults, it tries again after an error that is not one of
// the protocol's.
func (s *suite) expect(t *testing.T, what string, want error, f func() error) {
	t.Helper()
	for i := 0; ; i++ {
		err := f()
		if errors.Is(err, want) {
			return
		}
		if err == nil || !s.cfg.Faults || errors.Is(err, lease.ErrLost) || errors.Is(err, lease.ErrHeld) || i == 50 {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}
}

func (s *suite) race(t *testing.T, processes bool, workers int) {
	if workers < 0 {
		t.Skip("not asked for")
	}
	if workers == 0 {
		workers = 6
	}
	d := s.cfg.Duration
	if d == 0 {
		d = 3 * time.Second
		if testing.Short() {
			d = time.Second
		}
	}
	Race(t, RaceConfig{
		Open:            s.cfg.Open,
		Locations:       []string{s.cfg.New(t)},
		Workers:         workers,
		Processes:       processes,
		Duration:        d,
		TTLMin:          s.cfg.TTLMin,
		TTLMax:          s.cfg.TTLMax,
		MinAcquisitions: 10,
		Faults:          s.cfg.Faults,
	})
}

// testReportingWatch checks, for a store whose watch reports values
// (lease.ReportingWatch), that what it reports after a write is what the
// register held: the write's revision and bytes, a Floor no lower than
// the one a Load gave before the write, and nothing newer than the newest
// write. Wait judges such a value as it judges a Load's.
func (s *suite) testReportingWatch(t *testing.T) {
	_, st := s.fresh(t)
	wr, ok := st.(lease.Watcher)
	if !ok {
		t.Skip("not a Watcher")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := wr.Watch(ctx)
	if watch == nil {
		t.Skip("Watch returned nil: the store cannot watch here")
	}
	defer watch.Close()
	w, ok := watch.(lease.ReportingWatch)
	if !ok {
		t.Skip("its Watch is not a ReportingWatch")
	}
	// Complete is false until the watch is in place: a write made before
	// could be missed, which costs a Wait a poll, never a wrong value.
	for deadline := time.Now().Add(callTimeout); !watch.Complete(); {
		if time.Now().After(deadline) {
			t.Skipf("the watch was not complete within %v", callTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	v := s.load(t, st)
	for i := range 5 {
		data := uniq(t, 40+i)
		next, ok := s.swap(t, st, v.Rev, data, lease.Write{})
		if !ok {
			t.Fatalf("write %d at the current revision %q did not take effect", i, v.Rev)
		}
		timeout := time.NewTimer(callTimeout)
		err := watch.Sleep(ctx, v.Rev, timeout.C)
		timeout.Stop()
		if err != nil {
			t.Fatalf("Sleep after write %d: %v", i, err)
		}
		got, ok := w.Latest(v.Rev)
		for deadline := time.Now().Add(callTimeout); !ok && time.Now().Before(deadline); {
			// Sleep may return on a timeout or a hint before the report is in.
			time.Sleep(5 * time.Millisecond)
			got, ok = w.Latest(v.Rev)
		}
		if !ok {
			t.Fatalf("write %d at %q: no value reported after it within %v", i, v.Rev, callTimeout)
		}
		if got.Rev != next || !bytes.Equal(got.Data, data) {
			t.Fatalf("write %d: reported revision %q, %q; want the write's, %q, %q", i, got.Rev, got.Data, next, data)
		}
		if got.Floor < v.Floor {
			t.Fatalf("write %d: reported Floor %d, below the %d a Load gave before the write", i, got.Floor, v.Floor)
		}
		if stale, ok := w.Latest(next); ok {
			t.Fatalf("write %d: Latest(%q), the newest write's revision, reported %q", i, next, stale.Rev)
		}
		v = s.load(t, st)
		if v.Rev != next {
			t.Fatalf("Load after write %d: revision %q, want %q", i, v.Rev, next)
		}
	}
}
