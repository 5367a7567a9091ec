package s3store_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakes3"
	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
	"github.com/leaserun/leaserun/s3store"
)

// faulty opens a fresh lease on srv through a faultTransport, and proves
// the server enforces conditional writes first, so that the rule set
// afterwards meets only the lease's own requests.
func faulty(t *testing.T, srv *fakes3.Server) (*s3store.Store, *faultTransport, string) {
	t.Helper()
	key := newKey(t.Name())
	ft := newFaultTransport(nil)
	st := open(t, location(srv, key), s3store.WithHTTPClient(ft.client()))
	ctx, cancel := withTimeout(10 * time.Second)
	defer cancel()
	if err := st.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	return st, ft, key
}

func swap(st *s3store.Store, old lease.Revision, data string, d time.Duration) (lease.Revision, error) {
	ctx, cancel := withTimeout(d)
	defer cancel()
	return st.Swap(ctx, old, []byte(data), lease.Write{})
}

func load(t *testing.T, st *s3store.Store) lease.Value {
	t.Helper()
	ctx, cancel := withTimeout(10 * time.Second)
	defer cancel()
	v, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// unknown fails t unless err is an error that leaves a write's outcome
// unknown: neither nil nor ErrConflict nor ErrRemoved.
func unknown(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil || errors.Is(err, lease.ErrConflict) || errors.Is(err, lease.ErrRemoved) {
		t.Fatalf("%s: %v, want an error that leaves the outcome unknown", what, err)
	}
}

// A reply lost after the write landed: the store tries again, gets 412
// (the object is at its own new ETag), and reads the object back: it holds
// exactly the write's bytes, so the write took effect.
func TestLostReplyAfterWrite(t *testing.T) {
	srv := startServer(t)
	for name, f := range map[string]fault{"drop": {drop: true}, "500": {after: 500}, "503": {after: 503}} {
		t.Run(name, func(t *testing.T) {
			st, ft, key := faulty(t, srv)
			r1, err := swap(st, "", "one", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ft.setRule(once(func(r *http.Request) bool { return isPut(r, key) }, f))
			r2, err := swap(st, r1, "two", 5*time.Second)
			got := ft.requests()
			if err != nil {
				t.Fatalf("a write whose reply was lost after it landed: %v, want it found by reading back", err)
			}
			if v := load(t, st); v.Rev != r2 || string(v.Data) != "two" {
				t.Fatalf("Load = %q %q, want %q two", v.Rev, v.Data, r2)
			}
			if len(got) != 3 || got[0] != "PUT "+key || got[1] != "PUT "+key || got[2] != "GET "+key {
				t.Fatalf("requests %q, want PUT, PUT (412), GET", got)
			}
		})
	}
}

// A write that did not land, retried after another writer won: the retry
// gets 412, and the object holds the other's bytes. That 412 may not be
// taken for a conflict (it could be the first attempt's own), so the
// outcome is unknown, and the protocol resolves it.
func TestRetryAfterOtherWriterWon(t *testing.T) {
	srv := startServer(t)
	st, ft, key := faulty(t, srv)
	r1, err := swap(st, "", "one", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	other := open(t, location(srv, key))
	ft.setRule(once(func(r *http.Request) bool { return isPut(r, key) }, fault{
		reply: 500,
		then: func() {
			if _, err := swap(other, r1, "theirs", 5*time.Second); err != nil {
				t.Error(err)
			}
		},
	}))
	_, err = swap(st, r1, "mine", 5*time.Second)
	unknown(t, "a retry that found another writer's value", err)
	if !strings.Contains(err.Error(), "outcome unknown") {
		t.Errorf("the error does not say the outcome is unknown: %v", err)
	}
	if v := load(t, st); string(v.Data) != "theirs" {
		t.Fatalf("Load = %q, want theirs", v.Data)
	}
}

// A 500 before the write landed is retried, and the retry wins.
func TestServerErrorRetried(t *testing.T) {
	srv := startServer(t)
	for _, f := range []fault{{reply: 500}, {reply: 503, code: "SlowDown"}, {drop: false, reply: 502, code: "BadGateway"}} {
		t.Run(fmt.Sprint(f.reply), func(t *testing.T) {
			st, ft, key := faulty(t, srv)
			ft.setRule(once(func(r *http.Request) bool { return isPut(r, key) }, f))
			rev, err := swap(st, "", "one", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if v := load(t, st); v.Rev != rev || string(v.Data) != "one" {
				t.Fatalf("Load = %q %q", v.Rev, v.Data)
			}
		})
	}
}

// Every attempt fails with 500: the outcome is unknown.
func TestServerErrorPersistent(t *testing.T) {
	srv := startServer(t)
	st, ft, key := faulty(t, srv)
	ft.setRule(func(r *http.Request) fault {
		if isPut(r, key) {
			return fault{reply: 500}
		}
		return fault{}
	})
	_, err := swap(st, "", "one", 5*time.Second)
	unknown(t, "Swap against a server that answers 500", err)
	if n := ft.count("PUT " + key); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if !strings.Contains(err.Error(), "HTTP 500 InternalError") {
		t.Errorf("error %q does not say what the server answered", err)
	}
}

// 409 ConditionalRequestConflict means the write did not take effect: the
// store retries it, and once its retries are spent, reports a conflict so
// that the protocol reads the object again.
func TestConditionalRequestConflict(t *testing.T) {
	srv := startServer(t)
	t.Run("once", func(t *testing.T) {
		st, ft, key := faulty(t, srv)
		ft.setRule(once(func(r *http.Request) bool { return isPut(r, key) }, fault{reply: 409}))
		if _, err := swap(st, "", "one", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("always", func(t *testing.T) {
		st, ft, key := faulty(t, srv)
		r1, err := swap(st, "", "one", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ft.setRule(func(r *http.Request) fault {
			if isPut(r, key) {
				return fault{reply: 409}
			}
			return fault{}
		})
		_, err = swap(st, r1, "two", 5*time.Second)
		if !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("Swap after three 409s: %v, want ErrConflict", err)
		}
		if v := load(t, st); v.Rev != r1 {
			t.Fatalf("the value changed to %q", v.Data)
		}
	})
}

// A missing object answered to an If-Match: S3 says 404 NoSuchKey, which
// is ErrRemoved (the protocol never deletes the object); gofakes3, like
// some others, says 412, a conflict.
func TestMissingObject(t *testing.T) {
	srv := startServer(t)
	st, ft, key := faulty(t, srv)
	r1, err := swap(st, "", "one", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Delete(bucket, key); err != nil {
		t.Fatal(err)
	}
	if _, err := swap(st, r1, "two", 5*time.Second); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("If-Match on a deleted object, answered 412: %v, want ErrConflict", err)
	}
	ft.setRule(once(func(r *http.Request) bool { return isPut(r, key) }, fault{reply: 404, code: "NoSuchKey"}))
	if _, err := swap(st, r1, "two", 5*time.Second); !errors.Is(err, lease.ErrRemoved) {
		t.Fatalf("If-Match on a deleted object, answered 404: %v, want ErrRemoved", err)
	}
	// And the protocol: the holder loses, saying its record was removed.
	l, err := lease.AcquireStore(st, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ft.setRule(once(func(r *http.Request) bool { return isPut(r, key) }, fault{reply: 404, code: "NoSuchKey"}))
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) || !errors.Is(err, lease.ErrRemoved) {
		t.Fatalf("Renew of a removed lease: %v, want ErrLost and ErrRemoved", err)
	}
}

// A server that hangs: every call ends at its context's deadline, with an
// error that leaves a write's outcome unknown.
func TestHungServer(t *testing.T) {
	srv := startServer(t)
	st, ft, key := faulty(t, srv)
	r1, err := swap(st, "", "one", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ft.setRule(func(*http.Request) fault { return fault{hang: true} })
	// A call ends at its deadline, not after a retry or never; slack is
	// room for a loaded machine to wake the caller.
	const (
		d     = 300 * time.Millisecond
		slack = time.Second
	)
	start := time.Now()
	_, err = swap(st, r1, "two", d)
	took := time.Since(start)
	unknown(t, "Swap against a hung server", err)
	if took > d+slack {
		t.Errorf("Swap returned %v after its deadline", took-d)
	}
	ctx, cancel := withTimeout(d)
	start = time.Now()
	_, err = st.Load(ctx)
	cancel()
	if err == nil || time.Since(start) > d+slack {
		t.Errorf("Load against a hung server: %v after %v", err, time.Since(start))
	}
	// A fresh store's first write proves enforcement first: that ends at
	// the deadline too.
	fresh := open(t, location(srv, key), s3store.WithHTTPClient(ft.client()))
	start = time.Now()
	_, err = swap(fresh, r1, "three", d)
	unknown(t, "a first Swap against a hung server", err)
	if time.Since(start) > d+slack {
		t.Errorf("the first Swap returned %v after its deadline", time.Since(start)-d)
	}
	// The holder: Renew ends at its deadline, and the handle has lapsed.
	ft.setRule(nil)
	l, err := lease.AcquireStore(st, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ft.setRule(func(*http.Request) fault { return fault{hang: true} })
	err = l.Renew()
	if err == nil || time.Until(l.Deadline()) > 0 || !l.Expired() {
		t.Fatalf("Renew against a hung server: %v, %v before the deadline, expired %v", err, time.Until(l.Deadline()), l.Expired())
	}
	if late := time.Since(l.Deadline()); late > slack {
		t.Errorf("Renew returned %v after the holder's deadline", late)
	}
}

// A connection that hangs while more than two seconds are left: the
// attempt gets half of what is left, and a new one succeeds.
func TestHungAttemptRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2s")
	}
	srv := startServer(t)
	st, ft, key := faulty(t, srv)
	ft.setRule(once(func(r *http.Request) bool { return isPut(r, key) }, fault{hang: true}))
	start := time.Now()
	rev, err := swap(st, "", "one", 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 1900*time.Millisecond || took > 3500*time.Millisecond {
		t.Errorf("took %v, want about 2s", took)
	}
	if v := load(t, st); v.Rev != rev {
		t.Fatalf("Load = %q, want %q", v.Rev, rev)
	}
}

// Latency on every request slows the store and changes nothing else.
func TestLatency(t *testing.T) {
	srv := startServer(t)
	st, ft, _ := faulty(t, srv)
	ft.setRule(func(*http.Request) fault { return fault{delay: 20 * time.Millisecond} })
	l, err := lease.AcquireStore(st, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := l.Renew(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// A proxy that strips the conditional headers: the store refuses before
// it writes the lease, saying the store does not enforce conditional
// writes, and keeps refusing.
func TestStrippedConditions(t *testing.T) {
	srv := startServer(t)
	for name, f := range map[string]fault{
		"strip":           {strip: true},
		"not implemented": {reply: 501},
	} {
		t.Run(name, func(t *testing.T) {
			key := newKey(t.Name())
			ft := newFaultTransport(func(r *http.Request) fault {
				if r.Method == http.MethodPut {
					return f
				}
				return fault{}
			})
			st := open(t, location(srv, key), s3store.WithHTTPClient(ft.client()))
			_, err := lease.AcquireStore(st, time.Minute)
			if !errors.Is(err, s3store.ErrNotEnforced) || !strings.Contains(err.Error(), "does not enforce conditional writes") {
				t.Fatalf("AcquireStore through a proxy that strips the conditions: %v, want ErrNotEnforced", err)
			}
			if _, _, err := srv.Get(bucket, key); !errors.Is(err, fakes3.ErrNotFound) {
				t.Fatalf("the lease's object was written: %v", err)
			}
			before := len(ft.requests())
			ctx, cancel := withTimeout(5 * time.Second)
			defer cancel()
			if err := st.Verify(ctx); !errors.Is(err, s3store.ErrNotEnforced) {
				t.Fatalf("Verify again: %v", err)
			}
			if len(ft.requests()) != before {
				t.Error("Verify probed again after it found the conditions not enforced")
			}
			t.Log(err)
		})
	}
}

// Only one condition enforced is not enough.
func TestHalfEnforced(t *testing.T) {
	srv := startServer(t)
	for _, header := range []string{"If-Match", "If-None-Match"} {
		t.Run(header, func(t *testing.T) {
			ft := newFaultTransport(func(r *http.Request) fault {
				r.Header.Del(header)
				return fault{}
			})
			st := open(t, location(srv, newKey(t.Name())), s3store.WithHTTPClient(ft.client()))
			ctx, cancel := withTimeout(5 * time.Second)
			defer cancel()
			if err := st.Verify(ctx); !errors.Is(err, s3store.ErrNotEnforced) || !strings.Contains(err.Error(), header) {
				t.Fatalf("Verify with %s stripped: %v, want ErrNotEnforced naming it", header, err)
			}
		})
	}
}

// The probe removes its object, and leaves it if the delete is refused;
// it runs once per store, even for many first writes at once.
func TestProbe(t *testing.T) {
	srv := startServer(t)
	key := newKey(t.Name())
	ft := newFaultTransport(nil)
	st := open(t, location(srv, key), s3store.WithHTTPClient(ft.client()))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := swap(st, "", fmt.Sprint(i), 5*time.Second); err != nil && !errors.Is(err, lease.ErrConflict) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	probes := 0
	for _, r := range ft.requests() {
		if strings.Contains(r, ".probe-") {
			probes++
		}
	}
	if probes != 5 {
		t.Errorf("%d requests of the probe, want 5 (4 PUTs, 1 DELETE): %q", probes, ft.requests())
	}
	if keys, err := srv.Keys(bucket, key+".probe-"); err != nil || len(keys) != 0 {
		t.Errorf("probe objects left: %q %v", keys, err)
	}

	ft = newFaultTransport(func(r *http.Request) fault {
		if r.Method == http.MethodDelete {
			return fault{reply: 403}
		}
		return fault{}
	})
	st = open(t, location(srv, key), s3store.WithHTTPClient(ft.client()))
	ctx, cancel := withTimeout(5 * time.Second)
	defer cancel()
	if err := st.Verify(ctx); err != nil {
		t.Fatalf("Verify when the delete is refused: %v", err)
	}
	if keys, err := srv.Keys(bucket, key+".probe-"); err != nil || len(keys) != 1 {
		t.Errorf("probe objects left when the delete is refused: %q %v, want one", keys, err)
	}
}

// Servers that send ETags without quotes work the same.
func TestUnquotedETags(t *testing.T) {
	srv := startServer(t)
	st, ft, _ := faulty(t, srv)
	ft.setRule(func(*http.Request) fault { return fault{unquote: true} })
	l, err := lease.AcquireStore(st, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	v := load(t, st)
	ft.setRule(nil)
	if w := load(t, st); w.Rev != v.Rev || strings.Contains(string(w.Rev), `"`) {
		t.Fatalf("revision %q without quotes, %q with", v.Rev, w.Rev)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// Load reads at most MaxRecordSize+1 bytes, asks for no more (Range), and
// reads no more from a server that ignores the range; an empty object
// (which S3 answers 416 for a range) loads as empty.
func TestLoadBounded(t *testing.T) {
	srv := startServer(t)
	st, ft, key := faulty(t, srv)
	huge := bytes.Repeat([]byte("x"), 4*lease.MaxRecordSize)
	if err := srv.Put(bucket, key, huge, nil); err != nil {
		t.Fatal(err)
	}
	if v := load(t, st); len(v.Data) != lease.MaxRecordSize+1 || v.Rev == "" {
		t.Fatalf("Load of a huge object: %d bytes at %q", len(v.Data), v.Rev)
	}
	ft.setRule(func(r *http.Request) fault {
		if r.Header.Get("Range") != fmt.Sprintf("bytes=0-%d", lease.MaxRecordSize) {
			t.Errorf("GET with Range %q", r.Header.Get("Range"))
		}
		return fault{noRange: true}
	})
	if v := load(t, st); len(v.Data) != lease.MaxRecordSize+1 {
		t.Fatalf("Load of a huge object from a server that ignores Range: %d bytes", len(v.Data))
	}
	ft.setRule(nil)
	if err := srv.Put(bucket, key, nil, nil); err != nil {
		t.Fatal(err)
	}
	if v := load(t, st); len(v.Data) != 0 || v.Rev == "" {
		t.Fatalf("Load of an empty object: %q at %q", v.Data, v.Rev)
	}
}

// The whole suite in this process, through a transport that adds latency,
// loses replies after the write, answers 500 before and after it, and 409.
func TestConformanceFaults(t *testing.T) {
	srv := startServer(t)
	var mu sync.Mutex
	rng := newRand()
	ft := newFaultTransport(func(r *http.Request) fault {
		mu.Lock()
		p := rng.Float64()
		delay := time.Duration(rng.Int64N(int64(2 * time.Millisecond)))
		mu.Unlock()
		f := fault{delay: delay}
		switch {
		case p < 0.03:
			f.drop = true
		case p < 0.06:
			f.reply = 500
		case p < 0.09:
			f.after = 500
		case p < 0.11 && r.Method == http.MethodPut:
			f.reply = 409
		}
		return f
	})
	cfg := conformance(srv, t.Name())
	cfg.Open = func(loc string) (lease.Store, error) {
		return s3store.Open(t.Context(), loc, s3store.WithHTTPClient(ft.client()))
	}
	cfg.Faults = true
	cfg.Processes = -1
	leasetest.TestStore(t, cfg)
	t.Logf("%d requests", ft.n.Load())
}
