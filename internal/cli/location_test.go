package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
)

func TestParseLease(t *testing.T) {
	for _, tc := range []struct {
		value        string
		path, scheme string
	}{
		{value: "/var/lock/job.lease", path: "/var/lock/job.lease"},
		{value: "job.lease", path: "job.lease"},
		{value: "./a:b", path: "./a:b"},
		{value: "dir/x://y", path: "dir/x://y"}, // no scheme: a path
		{value: "file:///var/lock/job.lease", path: filepath.FromSlash("/var/lock/job.lease")},
		{value: "file://localhost/var/lock/job.lease", path: filepath.FromSlash("/var/lock/job.lease")},
		{value: "s3://bucket/jobs/report.lease", scheme: "s3"},
		{value: "S3://bucket/key", scheme: "s3"},
		{value: "etcd://127.0.0.1:2379/key", scheme: "etcd"},
		{value: "etcds://a:2379,b:2379/key", scheme: "etcds"},
	} {
		at, err := parseLease(tc.value)
		if err != nil || at.path != tc.path || at.scheme != tc.scheme {
			t.Errorf("parseLease(%q) = %+v, %v; want path %q, scheme %q", tc.value, at, err, tc.path, tc.scheme)
		}
	}
	for _, value := range []string{
		"gs://bucket/key",                  // no store serves it
		"file://otherhost/var/lock/x",      // not this host
		"file://",                          // no path
		"file:///var/lock/x?mode=shared",   // nothing to ask
		"consul://127.0.0.1:8500/key",      // no store serves it
		"http://example.invalid/lease.txt", // no store serves it
	} {
		if at, err := parseLease(value); !errors.As(err, new(usageError)) {
			t.Errorf("parseLease(%q) = %+v, %v; want a usage error", value, at, err)
		}
	}
}

func TestEarlyLease(t *testing.T) {
	t.Setenv("LEASERUN_LEASE", "")
	for _, tc := range []struct {
		args  []string
		env   string
		value string // "" for none
	}{
		{args: []string{"--lease", "etcd://h/k", "--", "true"}, value: "etcd://h/k"},
		{args: []string{"-l", "etcd://h/k", "--", "true"}, value: "etcd://h/k"},
		{args: []string{"--ttl", "5s", "--lease=etcd://h/k", "--", "true"}, value: "etcd://h/k"},
		{args: []string{"status", "--lease", "s3://b/k"}, value: "s3://b/k"},
		{args: []string{"--lease", "a", "--lease", "b", "--", "true"}, value: "b"}, // kong keeps the last
		{args: []string{"status", "-l", "s3://b/k"}, value: "s3://b/k"},
		{args: []string{"release", "--lease", "etcd://h/k", "--epoch", "3"}, value: "etcd://h/k"},
		{args: []string{"-ls3://b/k", "--", "true"}},
		{args: []string{"-wl", "s3://b/k", "--", "true"}},
		{args: []string{"-l=s3://b/k", "--", "true"}},
		{args: []string{"--lease", "etcd://h/k", "true"}},                          // no "--": a run's command may have begun
		{args: []string{"grep", "-l", "etcd://h/k", "/dev/null"}, env: "s3://b/k"}, // grep's -l
		{args: []string{"--", "true", "--lease", "etcd://h/k"}},
		{args: []string{"--", "true", "--lease", "etcd://h/k"}, env: "etcd://e/k", value: "etcd://e/k"},
		{args: []string{"--ttl", "5s", "--", "true"}, env: "etcd://e/k", value: "etcd://e/k"},
		{args: []string{"--lease", "etcd://h/k", "--", "true"}, env: "etcd://e/k", value: "etcd://h/k"},
		{args: []string{"--lease"}},
		{args: []string{"--lease", "etcd://h/k", "--help"}},
		{args: []string{"--help", "--lease", "etcd://h/k"}},
		{args: []string{"-h", "--lease", "etcd://h/k"}},
		{args: []string{"-wh", "--lease", "etcd://h/k"}},
		{args: []string{"--version", "--lease", "etcd://h/k"}},
		{args: []string{"--lease", "etcd://h/k", "--", "cmd", "--help"}, value: "etcd://h/k"},
	} {
		t.Setenv("LEASERUN_LEASE", tc.env)
		value, ok := earlyLease(tc.args)
		if value != tc.value || ok != (tc.value != "") {
			t.Errorf("earlyLease(%q) with LEASERUN_LEASE=%q = %q, %v; want %q", tc.args, tc.env, value, ok, tc.value)
		}
	}
}

func TestNetworkLease(t *testing.T) {
	t.Setenv("LEASERUN_LEASE", "")
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--lease", "/var/lock/job.lease", "--", "true"}, false},
		{[]string{"--lease", "file:///var/lock/job.lease", "--", "true"}, false},
		{[]string{"--lease", "etcd://127.0.0.1:2379/k", "--", "true"}, true},
		{[]string{"status", "-l", "s3://bucket/k"}, true},
		{[]string{"--lease", "gs://bucket/k", "--", "true"}, false}, // a usage error, later
		{[]string{"--help", "--lease", "etcd://h/k"}, false},
		{[]string{"--", "true"}, false},
	} {
		if got := networkLease(tc.args); got != tc.want {
			t.Errorf("networkLease(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
	t.Setenv("LEASERUN_LEASE", "etcds://h:2379/k")
	if !networkLease([]string{"--", "true"}) {
		t.Errorf("networkLease with LEASERUN_LEASE=etcds://... = false, want true")
	}
}

// earlyScheme is a store of scheme "etcd" for TestOpenEarly: it counts the
// opens and closes of its stores, and each Open waits for block, if set,
// or for its context.
type earlyScheme struct {
	mu           sync.Mutex
	opened       []string
	closedAtOpen []int // closed, as each Open began
	closed       int
	block        chan struct{}
	openErr      error // the context's error, when an Open ended by it
	loads        atomic.Int32
}

func (e *earlyScheme) open(ctx context.Context, location string) (lease.Store, error) {
	e.mu.Lock()
	e.opened = append(e.opened, location)
	e.closedAtOpen = append(e.closedAtOpen, e.closed)
	e.mu.Unlock()
	if e.block != nil {
		select {
		case <-e.block:
		case <-ctx.Done():
			e.mu.Lock()
			e.openErr = ctx.Err()
			e.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	m := leasetest.NewMemStore(location)
	m.Before = func(_ context.Context, c leasetest.Call) leasetest.Fault {
		if c.Op == "load" {
			e.loads.Add(1)
		}
		return leasetest.Fault{}
	}
	return &closeCounter{m, e}, nil
}

type closeCounter struct {
	*leasetest.MemStore
	e *earlyScheme
}

func (c *closeCounter) Close() error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	c.e.closed++
	return nil
}

func TestOpenEarly(t *testing.T) {
	t.Setenv("LEASERUN_LEASE", "")
	run := func(e *earlyScheme, args ...string) int {
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb, WithScheme(Scheme{Name: "etcd", Open: e.open}))
		t.Logf("leaserun %q: exit %d, stderr %q", args, code, errb.String())
		return code
	}

	// The store opened before the parse is the one the command uses: one
	// open, and nothing to close.
	e := &earlyScheme{}
	if code := run(e, "status", "--lease", "etcd://h/k"); code != 1 { // free: exit 1
		t.Errorf("status of a free lease: exit %d, want 1", code)
	}
	if len(e.opened) != 1 || e.closed != 0 {
		t.Errorf("status: opened %q, closed %d; want one open, no close", e.opened, e.closed)
	}
	// It reads the lease once: status takes the first read's answer, and
	// so does a run's acquisition.
	if n := e.loads.Load(); n != 1 {
		t.Errorf("status: %d reads of the lease, want 1", n)
	}
	e = &earlyScheme{}
	if code := run(e, "--lease", "etcd://h/k", "--", "true"); code != 0 {
		t.Errorf("run: exit %d, want 0", code)
	}
	if n := e.loads.Load(); n != 1 {
		t.Errorf("run: %d reads of the lease, want 1", n)
	}

	// A bad command line ends an opening still under way (here, one that
	// would never end by itself) and is a usage error.
	e = &earlyScheme{block: make(chan struct{})}
	if code := run(e, "--lease", "etcd://h/k", "--no-such-flag", "--", "true"); code != exitUsage {
		t.Errorf("bad flag: exit %d, want %d", code, exitUsage)
	}
	if !errors.Is(e.openErr, context.Canceled) {
		t.Errorf("bad flag: the early Open ended with %v, want context.Canceled", e.openErr)
	}

	// A store opened early for a value that open is not asked for is
	// closed before open opens the other: it is not held for the run.
	e = &earlyScheme{}
	ls := &leases{args: []string{"status", "--lease", "etcd://h/a"}}
	WithScheme(Scheme{Name: "etcd", Open: e.open})(&ls.links)
	ls.openEarly()
	if _, _, err := ls.open(context.Background(), "etcd://h/b"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.opened, []string{"etcd://h/a", "etcd://h/b"}) || !slices.Equal(e.closedAtOpen, []int{0, 1}) {
		t.Errorf("another value: opened %q with %v closed at each open; want a then b, a closed before b", e.opened, e.closedAtOpen)
	}
}

// TestEarlyLeaseAgreesWithKong: where earlyLease finds a lease, it is the
// one kong keeps. (One that read them apart could hand a command line to
// the executable of a store that the parse then hands on again.)
func TestEarlyLeaseAgreesWithKong(t *testing.T) {
	kongLease := func(args []string) (string, bool) {
		var c cli
		parser := kong.Must(&c, kong.Name("leaserun"), kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) {}))
		kctx, err := parser.Parse(withCommand(args))
		if err != nil {
			return "", false
		}
		switch kctx.Command() {
		case "status":
			return c.Status.Lease, true
		case "release":
			return c.Release.Lease, true
		}
		return c.Run.Lease, true
	}
	for _, tc := range []struct {
		env  string
		args []string
	}{
		{"", []string{"--lease", "etcd://h/k", "--lease", "s3://b/k", "--", "true"}},
		{"", []string{"status", "--lease", "etcd://h/k", "-l", "s3://b/k"}},
		{"etcd://h/k", []string{"-ls3://b/k", "--", "true"}},
		{"etcd://h/k", []string{"-wls3://b/k", "--", "true"}},
		{"s3://b/k", []string{"grep", "-l", "etcd://h/k", "/dev/null"}},
		{"s3://b/k", []string{"--wait", "grep", "-l", "etcd://h/k", "/dev/null"}},
		{"", []string{"--lease", "etcd://h/k", "--lease", "/var/lock/job.lease", "--", "true"}},
		{"etcd://h/k", []string{"--lease", "s3://b/k", "--", "true"}},
		{"", []string{"release", "--epoch", "3", "-l", "etcd://h/k"}},
		{"", []string{"--ttl", "5s", "-w", "--lease=etcd://h/k", "--", "true", "-l", "s3://b/k"}},
	} {
		t.Setenv("LEASERUN_LEASE", tc.env)
		early, eok := earlyLease(tc.args)
		got, kok := kongLease(tc.args)
		if eok && (!kok || early != got) {
			t.Errorf("LEASERUN_LEASE=%q leaserun %q: earlyLease finds %q, kong keeps %q (parsed: %v)", tc.env, tc.args, early, got, kok)
		}
	}
}

// TestPrimed: a store opened early answers its first Load with the read
// begun at the start, waiting for it while under way, and only then:
// not after another call, not once it is old, not when it failed.
func TestPrimed(t *testing.T) {
	ctx := context.Background()
	var loads atomic.Int32
	newStore := func(fault func(n int32) leasetest.Fault) *leasetest.MemStore {
		loads.Store(0)
		m := leasetest.NewMemStore("primed")
		m.Set([]byte("first"))
		m.Before = func(ctx context.Context, c leasetest.Call) leasetest.Fault {
			if c.Op != "load" {
				return leasetest.Fault{}
			}
			n := loads.Add(1)
			if fault != nil {
				return fault(n)
			}
			return leasetest.Fault{}
		}
		return m
	}
	primedOver := func(st lease.Store) *primed {
		p := &primed{Store: st, first: loadFirst(ctx, st)}
		<-p.first.done
		return p
	}
	loadData := func(ctx context.Context, p *primed) string {
		t.Helper()
		v, err := p.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(v.Data)
	}

	m := newStore(nil)
	p := primedOver(m)
	m.Set([]byte("second"))
	if got := loadData(ctx, p); got != "first" || loads.Load() != 1 {
		t.Errorf("first Load: %q after %d reads; want the first read's %q, no read of its own", got, loads.Load(), "first")
	}
	if got := loadData(ctx, p); got != "second" || loads.Load() != 2 {
		t.Errorf("second Load: %q after %d reads; want %q, read anew", got, loads.Load(), "second")
	}

	m = newStore(nil)
	p = primedOver(m)
	p.first.at = p.first.at.Add(-firstLoadFresh - time.Millisecond)
	m.Set([]byte("second"))
	if got := loadData(ctx, p); got != "second" {
		t.Errorf("first Load, the first read older than %v: %q, want %q", firstLoadFresh, got, "second")
	}

	m = newStore(nil)
	p = primedOver(m)
	v, err := m.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Swap(ctx, v.Rev, []byte("swapped"), lease.Write{}); err != nil {
		t.Fatal(err)
	}
	if got := loadData(ctx, p); got != "swapped" {
		t.Errorf("Load after a Swap: %q, want %q", got, "swapped")
	}

	m = newStore(nil)
	p = primedOver(m)
	m.Set([]byte("second"))
	if w := p.Watch(ctx); w == nil {
		t.Error("Watch of a Watcher: nil")
	} else {
		w.Close()
	}
	if got := loadData(ctx, p); got != "second" {
		t.Errorf("Load after a Watch: %q, want %q", got, "second")
	}
	if w := (&primed{Store: struct{ lease.Store }{m}}).Watch(ctx); w != nil {
		t.Error("Watch of a store that is not a Watcher: not nil")
	}

	m = newStore(func(n int32) leasetest.Fault {
		if n == 1 {
			return leasetest.Fault{Err: errors.New("refused")}
		}
		return leasetest.Fault{}
	})
	p = primedOver(m)
	if got := loadData(ctx, p); got != "first" || loads.Load() != 2 {
		t.Errorf("first Load after a failed first read: %q after %d reads; want %q, read anew", got, loads.Load(), "first")
	}

	// Under way: the first Load waits for it rather than read again.
	release := make(chan struct{})
	m = newStore(func(n int32) leasetest.Fault {
		if n == 1 {
			<-release
		}
		return leasetest.Fault{}
	})
	p = &primed{Store: m, first: loadFirst(ctx, m)}
	time.AfterFunc(20*time.Millisecond, func() { close(release) })
	if got := loadData(ctx, p); got != "first" || loads.Load() != 1 {
		t.Errorf("first Load while the first read is under way: %q after %d reads; want %q, no read of its own", got, loads.Load(), "first")
	}

	// A first read that hangs (on a member that hangs) holds the first
	// Load for half of its context's time, and is cancelled then: the
	// Load reads on its own with the rest, as an acquisition with a short
	// TTL must.
	m = newStore(func(n int32) leasetest.Fault { return leasetest.Fault{Hang: n == 1} })
	p = &primed{Store: m, first: loadFirst(ctx, m)}
	f := p.first
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	if got := loadData(lctx, p); got != "first" {
		t.Errorf("first Load while the first read hangs: %q, want %q, read on its own", got, "first")
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("first Load while the first read hangs: read on its own after %v, want after half of 2s", took)
	}
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Error("the hung first read was not cancelled")
	}

	// Without a deadline, until its context ends.
	m = newStore(func(n int32) leasetest.Fault { return leasetest.Fault{Hang: n == 1} })
	p = &primed{Store: m, first: loadFirst(ctx, m)}
	f = p.first
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, ccancel)
	if _, err := p.Load(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("first Load while the first read hangs, cancelled: %v, want an error wrapping context.Canceled", err)
	}
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Error("the hung first read was not cancelled")
	}
}
