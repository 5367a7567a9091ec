// Command etcd is the store-level half of bench/etcd.sh: the lease of
// package lease on an etcd key (package etcdstore), one step per run, so
// that the script can time it beside etcdctl lock.
//
//	etcd once LOCATION TTL        open, acquire, release, close: what
//	                              leaserun --lease etcd://... -- true will
//	                              do to the store
//	etcd hold LOCATION TTL [FOR]  acquire, print "held NS", renew every
//	                              TTL/3; after FOR (if given) print
//	                              "releasing NS" and release; else until
//	                              killed
//	etcd wait LOCATION TTL        wait as a standby, print "acquired NS",
//	                              release
//	etcd ops LOCATION N           in one process: N of each of Load, Swap
//	                              (a renewal), Acquire+Release, and the
//	                              hand-off from a Release to a waiting
//	                              standby of another client; prints
//	                              min/median/p90 of each
//
// NS is the wall clock in nanoseconds since the epoch (one host: the
// script subtracts the readings of two processes).
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/leaserun/leaserun/etcdstore"
	"github.com/leaserun/leaserun/lease"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: etcd once|hold|wait LOCATION TTL [FOR] | etcd ops LOCATION N")
		os.Exit(64)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3:]); err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
}

func open(loc string) (*etcdstore.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return etcdstore.Open(ctx, loc)
}

func now() int64 { return time.Now().UnixNano() }

func run(mode, loc string, args []string) error {
	if mode == "ops" {
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		return ops(loc, n)
	}
	ttl, err := time.ParseDuration(args[0])
	if err != nil {
		return err
	}
	s, err := open(loc)
	if err != nil {
		return err
	}
	defer s.Close()
	switch mode {
	case "once":
		l, err := lease.AcquireStore(s, ttl)
		if err != nil {
			return err
		}
		return l.Release()
	case "hold":
		l, err := lease.AcquireStore(s, ttl)
		if err != nil {
			return err
		}
		fmt.Println("held", now())
		var end <-chan time.Time
		if len(args) > 1 {
			d, err := time.ParseDuration(args[1])
			if err != nil {
				return err
			}
			end = time.After(d)
		}
		tick := time.NewTicker(ttl / 3)
		for {
			select {
			case <-end:
				fmt.Println("releasing", now())
				return l.Release()
			case <-tick.C:
				if err := l.Renew(); err != nil {
					return err
				}
			}
		}
	case "wait":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		l, err := lease.WaitStore(ctx, s, ttl)
		if err != nil {
			return err
		}
		fmt.Println("acquired", now())
		return l.Release()
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// ops times the store's operations in one process.
func ops(loc string, n int) error {
	a, err := open(loc)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := open(loc)
	if err != nil {
		return err
	}
	defer b.Close()
	ctx := context.Background()
	const ttl = time.Minute
	var load, renew, cycle, handoff []time.Duration
	for range n {
		t0 := time.Now()
		if _, err := a.Load(ctx); err != nil {
			return err
		}
		load = append(load, time.Since(t0))

		l, err := lease.AcquireStore(a, ttl)
		if err != nil {
			return err
		}
		t0 = time.Now()
		if err := l.Renew(); err != nil {
			return err
		}
		renew = append(renew, time.Since(t0))
		if err := l.Release(); err != nil {
			return err
		}
	}
	for range n {
		t0 := time.Now()
		l, err := lease.AcquireStore(a, ttl)
		if err != nil {
			return err
		}
		if err := l.Release(); err != nil {
			return err
		}
		cycle = append(cycle, time.Since(t0))
	}
	for range n {
		l, err := lease.AcquireStore(a, ttl)
		if err != nil {
			return err
		}
		got := make(chan time.Time, 1)
		errc := make(chan error, 1)
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		go func() {
			w, err := lease.WaitStore(wctx, b, ttl, lease.WithPollInterval(time.Hour))
			got <- time.Now()
			if err == nil {
				err = w.Release()
			}
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond) // the standby is watching
		t0 := time.Now()
		if err := l.Release(); err != nil {
			cancel()
			return err
		}
		handoff = append(handoff, (<-got).Sub(t0))
		err = <-errc
		cancel()
		if err != nil {
			return err
		}
	}
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"load", load}, {"renew", renew}, {"acquire+release", cycle}, {"handoff", handoff}} {
		slices.Sort(m.d)
		fmt.Printf("%s min=%v median=%v p90=%v n=%d\n", m.name,
			m.d[0].Round(time.Microsecond), m.d[len(m.d)/2].Round(time.Microsecond), m.d[len(m.d)*9/10].Round(time.Microsecond), len(m.d))
	}
	return nil
}
