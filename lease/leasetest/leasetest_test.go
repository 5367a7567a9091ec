package leasetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// memRegistry names MemStores, so that a location opens one.
type memRegistry struct {
	mu     sync.Mutex
	stores map[string]*MemStore
	n      atomic.Int64
	before func(context.Context, Call) Fault
}

func (r *memRegistry) config() Config {
	return Config{
		New: func(t *testing.T) string {
			name := "m" + strconv.FormatInt(r.n.Add(1), 10)
			m := NewMemStore(name)
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.stores == nil {
				r.stores = map[string]*MemStore{}
			}
			r.stores[name] = m
			return name
		},
		Open: func(loc string) (lease.Store, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			m, ok := r.stores[loc]
			if !ok {
				return nil, fmt.Errorf("no MemStore %q", loc)
			}
			return m, nil
		},
		Plant: func(t *testing.T, loc string, data []byte) {
			r.mu.Lock()
			m := r.stores[loc]
			r.mu.Unlock()
			m.Set(data)
			m.Before = r.before // hostile data first, faults after
		},
		Processes: -1,
	}
}

func TestMemStore(t *testing.T) {
	var r memRegistry
	TestStore(t, r.config())
}

// The whole suite, in-process, over MemStores that fail a tenth of their
// calls.
func TestMemStoreFaults(t *testing.T) {
	r := memRegistry{before: RandomFaults(uint64(time.Now().UnixNano()), 0.1)}
	cfg := r.config()
	cfg.Faults = true
	open := cfg.Open
	cfg.Open = func(loc string) (lease.Store, error) {
		st, err := open(loc)
		if m, ok := st.(*MemStore); ok && m.Before == nil {
			m.Before = r.before
		}
		return st, err
	}
	TestStore(t, cfg)
}

// A MemStore hidden behind an interface that is only a Store: Wait polls.
func TestMemStorePolled(t *testing.T) {
	var r memRegistry
	cfg := r.config()
	open := cfg.Open
	cfg.Open = func(loc string) (lease.Store, error) {
		st, err := open(loc)
		if err != nil {
			return nil, err
		}
		return struct{ lease.Store }{st}, nil
	}
	TestStore(t, cfg)
}

// The files pass the suite too (in package lease's tests, with Plant and
// the race of processes); here they serve the harness's own test.
func files(loc string) (lease.Store, error) { return lease.Files(loc), nil }

func TestCheckIntervals(t *testing.T) {
	iv := func(id string, epoch uint64, start, end int64) interval {
		return interval{InstanceID: id, Epoch: epoch, Start: start, End: end, Confirmed: true}
	}
	unconfirmed := func(id string, epoch uint64, start int64) interval {
		return interval{InstanceID: id, Epoch: epoch, Start: start}
	}
	tests := []struct {
		name string
		ivs  []interval
		want []string // kinds, in any order; nil for none
	}{
		{"clean", []interval{iv("c", 3, 30, 39), iv("a", 1, 10, 19), iv("b", 2, 20, 29)}, nil},
		{"clean with unconfirmed out of order", []interval{
			iv("a", 1, 10, 19), unconfirmed("b", 2, 35), iv("c", 3, 30, 39), iv("d", 4, 40, 40),
		}, nil},
		{"empty", nil, nil},
		{"overlap", []interval{iv("a", 1, 10, 20), iv("b", 2, 15, 30)}, []string{"overlap"}},
		{"touching is overlap", []interval{iv("a", 1, 10, 20), iv("b", 2, 20, 30)}, []string{"overlap"}},
		{"contained", []interval{iv("a", 1, 10, 100), iv("b", 2, 20, 30), iv("c", 3, 40, 50)}, []string{"overlap", "overlap"}},
		{"duplicate instance", []interval{iv("a", 1, 10, 19), iv("a", 2, 20, 29)}, []string{"duplicate-instance"}},
		{"duplicate instance unconfirmed", []interval{iv("a", 1, 10, 19), unconfirmed("a", 2, 20)}, []string{"duplicate-instance"}},
		{"epoch regresses", []interval{iv("a", 2, 10, 19), iv("b", 1, 20, 29)}, []string{"epoch-order"}},
		{"epoch repeats", []interval{iv("a", 1, 10, 19), iv("b", 1, 20, 29)}, []string{"duplicate-epoch", "epoch-order"}},
		{"epoch repeats unconfirmed", []interval{iv("a", 1, 10, 19), unconfirmed("b", 1, 5)}, []string{"duplicate-epoch"}},
		{"malformed", []interval{iv("a", 1, 19, 10)}, []string{"malformed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range checkIntervals(tt.ivs) {
				got = append(got, p.Kind)
				t.Logf("%s", p)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("problems %q, want %q", got, want)
			}
		})
	}
}

// TestRaceCatchesSplitBrain proves the whole harness, timing included, can
// fail: two worker processes on two different leases each believe they
// hold "the" lease, and the checker must see their intervals overlap.
func TestRaceCatchesSplitBrain(t *testing.T) {
	if RaceWorker() {
		Race(t, RaceConfig{Open: files})
		return
	}
	if !processesSupported {
		t.Skip("processes: Linux only")
	}
	dir := t.TempDir()
	ivs, _ := runWorkers(t, RaceConfig{
		Open:            files,
		Locations:       []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")},
		Workers:         2,
		Processes:       true,
		Duration:        500 * time.Millisecond,
		TTLMin:          50 * time.Millisecond,
		TTLMax:          200 * time.Millisecond,
		MinAcquisitions: 6,
	})
	if t.Failed() {
		return
	}
	overlaps := 0
	for _, p := range checkIntervals(ivs) {
		if p.Kind == "overlap" {
			overlaps++
		}
	}
	t.Logf("%d intervals, %d overlaps", len(ivs), overlaps)
	if overlaps == 0 {
		t.Errorf("the checker found no overlap between two workers holding two different leases")
	}
}

// The same in goroutines.
func TestRaceCatchesSplitBrainGoroutines(t *testing.T) {
	var r memRegistry
	cfg := r.config()
	ivs, _ := runWorkers(t, RaceConfig{
		Open:            cfg.Open,
		Locations:       []string{cfg.New(t), cfg.New(t)},
		Workers:         2,
		Duration:        500 * time.Millisecond,
		TTLMin:          50 * time.Millisecond,
		TTLMax:          200 * time.Millisecond,
		MinAcquisitions: 6,
	})
	if !slices.ContainsFunc(checkIntervals(ivs), func(p problem) bool { return p.Kind == "overlap" }) {
		t.Errorf("the checker found no overlap in %d intervals of two workers holding two different leases", len(ivs))
	}
}

var _ = errors.Is
