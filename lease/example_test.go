package lease_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// exampleDir returns a fresh directory for an example, and its cleanup.
func exampleDir() (string, func()) {
	dir, err := os.MkdirTemp("", "lease-example-")
	if err != nil {
		log.Fatal(err)
	}
	return dir, func() { os.RemoveAll(dir) }
}

// A holder acquires the lease, renews it, and releases it on shutdown. A
// second instance is kept out meanwhile.
func ExampleAcquire() {
	dir, cleanup := exampleDir()
	defer cleanup()
	path := filepath.Join(dir, "leader.lease")

	l, err := lease.Acquire(path, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("acquired at epoch", l.Epoch())

	_, err = lease.Acquire(path, time.Minute)
	fmt.Println("second instance held out:", errors.Is(err, lease.ErrHeld))

	// Renew well before the TTL runs out, e.g. every TTL/3 from a ticker.
	// ErrLost means stop: another instance may hold the lease now.
	if err := l.Renew(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("renewed; still holding:", !l.Expired())

	if err := l.Release(); err != nil {
		log.Fatal(err)
	}
	st, err := lease.Read(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after Release:", st.State)

	// Output:
	// acquired at epoch 1
	// second instance held out: true
	// renewed; still holding: true
	// after Release: released
}

// A standby waits for the lease: it takes over as soon as the holder
// releases it (or once the holder has stopped renewing for a whole TTL),
// and gives up when its context ends.
func ExampleWait() {
	dir, cleanup := exampleDir()
	defer cleanup()
	path := filepath.Join(dir, "leader.lease")

	holder, err := lease.Acquire(path, time.Minute)
	if err != nil {
		log.Fatal(err)
	}

	// A standby with a short deadline gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = lease.Wait(ctx, path, time.Minute)
	cancel()
	fmt.Println("gave up:", errors.Is(err, lease.ErrHeld), errors.Is(err, context.DeadlineExceeded))

	// One that waits longer takes over when the holder releases.
	released := make(chan error, 1)
	go func() { released <- holder.Release() }()
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lease.Wait(ctx, path, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	if err := <-released; err != nil {
		log.Fatal(err)
	}
	fmt.Println("standby took over at epoch", l.Epoch(), "after epoch", holder.Epoch())
	if err := l.Release(); err != nil {
		log.Fatal(err)
	}

	// Output:
	// gave up: true true
	// standby took over at epoch 2 after epoch 1
}

// Followers find the holder through Read and the Meta it advertised.
func ExampleRead() {
	dir, cleanup := exampleDir()
	defer cleanup()
	path := filepath.Join(dir, "leader.lease")

	st, err := lease.Read(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("before:", st.State)

	l, err := lease.Acquire(path, time.Minute, lease.WithMeta(map[string]string{"endpoint": "10.0.0.7:8080"}))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Release()

	st, err = lease.Read(path)
	if err != nil {
		log.Fatal(err)
	}
	if st.State == lease.StateHeld {
		fmt.Println("leader at", st.Record.Meta["endpoint"], "epoch", st.Record.Epoch)
	}

	// Output:
	// before: free
	// leader at 10.0.0.7:8080 epoch 1
}
