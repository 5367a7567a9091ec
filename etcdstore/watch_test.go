package etcdstore

import (
	"context"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/etcdtest"
	"github.com/leaserun/leaserun/lease"
)

// waitComplete waits until w reports itself complete, as Wait calls it:
// before a read.
func waitComplete(t *testing.T, w lease.Watch, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !w.Complete() {
		if time.Now().After(deadline) {
			t.Fatalf("the watch is not in place after %v", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// breakWatch cancels w's current watch under it, as the server cancels
// one, and waits until w has seen it end.
func breakWatch(t *testing.T, w *watch) {
	t.Helper()
	w.mu.Lock()
	w.cancel()
	w.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		w.mu.Lock()
		broken := w.broken
		w.mu.Unlock()
		if broken {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancelled watch did not break")
		}
	}
}

func load(t *testing.T, s *Store) lease.Value {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func swap(t *testing.T, s *Store, old lease.Revision, data string) lease.Revision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, err := s.Swap(ctx, old, []byte(data), lease.Write{})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// sleep runs w.Sleep in the background and returns its result's channel.
func sleep(w lease.Watch, rev lease.Revision, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.Sleep(context.Background(), rev, time.After(timeout)) }()
	return done
}

func woken(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: Sleep: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Sleep was not woken", what)
	}
}

func asleep(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s: Sleep returned %v", what, err)
	case <-time.After(200 * time.Millisecond):
	}
}

// The watch reports every write after the value read, and Ahead knows
// of one already made; writes before it are no news.
func TestWatchReports(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	s, other := openT(t, loc), openT(t, loc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := s.Watch(ctx)
	defer w.Close()
	waitComplete(t, w, 10*time.Second)

	// No key yet: a create wakes the sleeper.
	v := load(t, s)
	done := sleep(w, v.Rev, time.Minute)
	asleep(t, done, "no change")
	r1 := swap(t, other, "", "one")
	woken(t, done, "create")
	if w.Ahead("") || w.Ahead(r1) {
		t.Errorf("Ahead(%q) after the create", r1)
	}

	// At r1: a write after it wakes, and Ahead says so before a read.
	w.Complete()
	done = sleep(w, r1, time.Minute)
	asleep(t, done, "no change at r1")
	r2 := swap(t, other, r1, "two")
	woken(t, done, "swap")
	if !w.Ahead(r1) || w.Ahead(r2) {
		t.Errorf("Ahead(r1) = %v, Ahead(r2) = %v after the write of r2; want true, false", w.Ahead(r1), w.Ahead(r2))
	}
	// A sleeper at an older value returns at once: r2 is news to it.
	woken(t, sleep(w, r1, time.Minute), "at an older value")

	// A deletion by hand wakes too, and a sleeper at "no key" read after
	// it sleeps until the next write.
	w.Complete()
	done = sleep(w, r2, time.Minute)
	if out, err := c.Etcdctl(t, nil, "del", s.Key()); err != nil {
		t.Fatalf("etcdctl del: %v: %s", err, out)
	}
	woken(t, done, "delete")
	w.Complete()
	v = load(t, s)
	if v.Rev != "" {
		t.Fatalf("the key is still at %q", v.Rev)
	}
	done = sleep(w, "", time.Minute)
	asleep(t, done, "no key, no change")
	swap(t, other, "", "three")
	woken(t, done, "create after delete")

	// The timeout ends a sleep; ctx too.
	w.Complete()
	v = load(t, s)
	woken(t, sleep(w, v.Rev, 10*time.Millisecond), "timeout")
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := w.Sleep(cctx, v.Rev, nil); err != context.Canceled {
		t.Errorf("Sleep under a cancelled context: %v", err)
	}
}

// Latest gives the value of the newest event after the value read, as
// Load gives it, with a Floor no lower than the event's revision: a
// write's value, or no key after a deletion. An event at or before the
// value read, or a watch that broke, gives none.
func TestWatchLatest(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	s, other := openT(t, loc), openT(t, loc)
	w := s.Watch(context.Background()).(*watch)
	defer w.Close()
	waitComplete(t, w, 10*time.Second)
	latest := func(rev lease.Revision) (lease.Value, bool) {
		t.Helper()
		v, ok := w.Latest(rev)
		if ok && rev != "" && !w.Ahead(rev) {
			t.Errorf("Latest(%q) gives a value, but Ahead(%q) is false", rev, rev)
		}
		return v, ok
	}

	if v, ok := latest(""); ok {
		t.Errorf("Latest before any event = %+v", v)
	}
	r1 := swap(t, other, "", "one")
	woken(t, sleep(w, "", time.Minute), "create")
	v, ok := latest("")
	want := load(t, s)
	if !ok || v.Rev != r1 || string(v.Data) != "one" || v.Rev != want.Rev || string(v.Data) != string(want.Data) {
		t.Errorf("Latest(\"\") after the create = %+v, %v; want the value at %s that Load gives: %+v", v, ok, r1, want)
	}
	if n, _ := parseRev(r1); v.Floor < uint64(n) {
		t.Errorf("Floor %d below the write's revision %s", v.Floor, r1)
	}
	if v, ok := latest(r1); ok {
		t.Errorf("Latest(%q) at the newest value = %+v", r1, v)
	}

	w.Complete()
	r2 := swap(t, other, r1, "two")
	woken(t, sleep(w, r1, time.Minute), "swap")
	if v, ok := latest(r1); !ok || v.Rev != r2 || string(v.Data) != "two" {
		t.Errorf("Latest(%q) after the write of %s = %+v, %v", r1, r2, v, ok)
	}

	w.Complete()
	if out, err := c.Etcdctl(t, nil, "del", s.Key()); err != nil {
		t.Fatalf("etcdctl del: %v: %s", err, out)
	}
	woken(t, sleep(w, r2, time.Minute), "delete")
	v, ok = latest(r2)
	if n, _ := parseRev(r2); !ok || v.Rev != "" || v.Data != nil || v.Floor <= uint64(n) {
		t.Errorf("Latest(%q) after the deletion = %+v, %v; want no key, with a Floor above %s", r2, v, ok, r2)
	}
	if load(t, s).Floor < v.Floor {
		t.Errorf("Floor %d above a later Load's", v.Floor)
	}
	w.Complete() // the deletion is no news to a read made now
	if v, ok := latest(""); ok {
		t.Errorf("Latest(\"\") after a Complete, with no event since = %+v", v)
	}

	r3 := swap(t, other, "", "three")
	breakWatch(t, w)
	woken(t, sleep(w, "", time.Minute), "event or broken watch")
	if v, ok := latest(""); ok {
		t.Errorf("Latest after the watch broke = %+v (the write of %s may be followed by others it missed)", v, r3)
	}
}

// A watch that ends (here: cancelled under it, as the server cancels one
// that fell behind a compaction or lost its leader) wakes the sleeper;
// the next Complete is false and puts it back; then it is complete, and
// reports again.
func TestWatchBroken(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	s, other := openT(t, loc), openT(t, loc)
	w := s.Watch(context.Background()).(*watch)
	defer w.Close()
	waitComplete(t, w, 10*time.Second)
	swap(t, other, "", "one")
	w.Complete()
	rev := load(t, s).Rev
	done := sleep(w, rev, time.Minute)
	asleep(t, done, "no change")
	w.mu.Lock()
	w.cancel()
	w.mu.Unlock()
	woken(t, done, "broken watch")
	if w.Complete() {
		t.Fatal("Complete right after the watch broke")
	}
	waitComplete(t, w, 10*time.Second)
	done = sleep(w, rev, time.Minute)
	asleep(t, done, "no change after the watch was put back")
	swap(t, other, rev, "two")
	woken(t, done, "a write after the watch was put back")
}

// A watch that breaks after Complete reported it in place, before Wait
// sleeps, wakes that sleep at once: Wait polls seldom then, and a release
// made meanwhile may have gone unreported.
func TestWatchBrokenBeforeSleep(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	s := openT(t, loc)
	w := s.Watch(context.Background()).(*watch)
	defer w.Close()
	waitComplete(t, w, 10*time.Second)
	rev := load(t, s).Rev
	breakWatch(t, w)
	woken(t, sleep(w, rev, time.Minute), "a watch broken since Complete")
	// Complete puts it back; until the server has set it up, Wait polls
	// often, and a sleep waits for news.
	if w.Complete() {
		t.Fatal("Complete right after the watch broke")
	}
	breakWatch(t, w) // again, before it was ever in place
	asleep(t, sleep(w, rev, time.Minute), "a watch never in place, broken before the sleep")
}

// A standby wakes on the watch, not a poll: released, a lease whose TTL
// and poll interval are long is taken at once.
func TestWatchHandOff(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	holder, err := lease.AcquireStore(openT(t, loc), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	standby := openT(t, loc)
	got := make(chan *lease.Lease, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		l, err := lease.WaitStore(ctx, standby, time.Minute, lease.WithPollInterval(time.Hour))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	time.Sleep(500 * time.Millisecond) // the standby watches by now
	released := time.Now()
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	l := <-got
	if l == nil {
		return
	}
	took := time.Since(released)
	t.Logf("hand-off %v", took)
	if took > 10*time.Second {
		t.Errorf("the standby took the released lease after %v: not woken by the watch", took)
	}
	if l.Epoch() <= holder.Epoch() {
		t.Errorf("epoch %d after %d", l.Epoch(), holder.Epoch())
	}
	l.Release()
}
