package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/leaserun/leaserun/internal/etcdtest"
	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/lease/leasetest"
)

// keys numbers the keys of a test process, so that every New is a
// register of its own.
var keys atomic.Int64

// newKey returns a fresh key's location on c.
func newKey(t *testing.T, c *etcdtest.Cluster) string {
	return c.Location(fmt.Sprintf("leaserun-test/%d/%d", os.Getpid(), keys.Add(1)))
}

// openT opens location for t, and closes the store when t ends.
func openT(t testing.TB, location string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, location)
	if err != nil {
		t.Fatalf("Open(%q): %v", location, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// plant puts data at location's key by the back door, as a hand edit,
// through a client of its own that may send up to 16 MiB.
func plant(t *testing.T, location string, data []byte) {
	t.Helper()
	l, err := parseLocation(location)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          l.urls(),
		DialTimeout:        10 * time.Second,
		MaxCallSendMsgSize: 16 << 20,
		MaxCallRecvMsgSize: 16 << 20,
		Logger:             zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, l.key, string(data)); err != nil {
		t.Fatalf("planting %d bytes at %s: %v", len(data), location, err)
	}
}

// storeConfig is the etcd store for leasetest on cluster (nil in a worker
// process of the race, which only opens locations it is given).
func storeConfig(t *testing.T, cluster func() *etcdtest.Cluster) leasetest.Config {
	var (
		mu     sync.Mutex
		stores []*Store
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range stores {
			s.Close()
		}
	})
	return leasetest.Config{
		New: func(t *testing.T) string { return newKey(t, cluster()) },
		Open: func(location string) (lease.Store, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, location)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			stores = append(stores, s)
			mu.Unlock()
			return s, nil
		},
		Plant: plant,
	}
}

// The etcd store passes the store conformance suite against a real etcd,
// the race of OS processes included: every worker process opens its own
// client from the location.
func TestConformance(t *testing.T) {
	var c *etcdtest.Cluster
	if !leasetest.RaceWorker() {
		c = etcdtest.Start(t, etcdtest.Options{})
	}
	leasetest.TestStore(t, storeConfig(t, func() *etcdtest.Cluster { return c }))
}

// A value too large for a response (possible only where the server's
// --max-request-bytes was raised) loads bounded, as a free lease at its
// revision, and an acquisition replaces it.
func TestHugeValue(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Args: []string{"--max-request-bytes", fmt.Sprint(8 << 20)}})
	loc := newKey(t, c)
	plant(t, loc, []byte(strings.Repeat("x", 3<<20)))
	s := openT(t, loc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rev == "" || len(v.Data) > lease.MaxRecordSize+1 || v.Floor == 0 {
		t.Fatalf("Load of 3 MiB: revision %q, %d bytes, floor %d", v.Rev, len(v.Data), v.Floor)
	}
	l, err := lease.AcquireStore(s, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l.Epoch() <= v.Floor {
		t.Errorf("epoch %d, want above the floor %d", l.Epoch(), v.Floor)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// Epochs go up even when the key is deleted by hand between two
// acquisitions: the second takes the cluster's revision + 1.
func TestEpochAfterDelete(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	s := openT(t, loc)
	var last uint64
	for i := range 4 {
		l, err := lease.AcquireStore(s, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if l.Epoch() <= last {
			t.Fatalf("acquisition %d: epoch %d after %d", i, l.Epoch(), last)
		}
		last = l.Epoch()
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if out, err := c.Etcdctl(t, nil, "del", s.Key()); err != nil || strings.TrimSpace(out) != "1" {
				t.Fatalf("etcdctl del %s: %v: %s", s.Key(), err, out)
			}
		}
	}
}

// A holder whose key is deleted by hand learns it at its next renewal:
// ErrLost, saying that the record was removed, and it writes nothing more.
func TestDeletedUnderHolder(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	s := openT(t, loc)
	for _, recreate := range []bool{false, true} {
		l, err := lease.AcquireStore(s, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := c.Etcdctl(t, nil, "del", s.Key()); err != nil {
			t.Fatalf("etcdctl del: %v: %s", err, out)
		}
		if recreate {
			if out, err := c.Etcdctl(t, nil, "put", s.Key(), "by hand"); err != nil {
				t.Fatalf("etcdctl put: %v: %s", err, out)
			}
		}
		err = l.Renew()
		if !errors.Is(err, lease.ErrLost) || !errors.Is(err, lease.ErrRemoved) {
			t.Fatalf("Renew after the key was deleted (made anew: %v): %v, want ErrLost and ErrRemoved", recreate, err)
		}
		if !l.Expired() {
			t.Fatal("not Expired after ErrLost")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := s.Load(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if recreate != (v.Rev != "") || recreate && string(v.Data) != "by hand" {
			t.Fatalf("after the lost renewal the key holds %q at %q: the holder wrote", v.Data, v.Rev)
		}
		l.Release()
		if out, err := c.Etcdctl(t, nil, "del", s.Key()); err != nil {
			t.Fatalf("etcdctl del: %v: %s", err, out)
		}
	}
}
