package lease

import (
	"context"
	"errors"
	"testing"
	"time"
)

// callCtx behaves as context.WithDeadline, making its timer only on Done.
func TestCallCtx(t *testing.T) {
	c := within(context.Background(), systemClock{}, time.Now().Add(time.Hour))
	if d, ok := c.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	if c.Err() != nil || c.ctx != nil {
		t.Fatalf("Err = %v before anything; timer made: %v", c.Err(), c.ctx != nil)
	}
	c.release()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err after release = %v, want Canceled", c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done open after release")
	}

	c = within(context.Background(), systemClock{}, time.Now().Add(20*time.Millisecond))
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done did not close at the deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", c.Err())
	}
	c.release()

	c = within(context.Background(), systemClock{}, time.Now().Add(-time.Second))
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err past the deadline, before Done = %v, want DeadlineExceeded", c.Err())
	}
	<-c.Done()
	c.release()

	parent, cancel := context.WithCancel(context.Background())
	c = within(parent, systemClock{}, time.Now().Add(time.Hour))
	child, stop := context.WithCancel(c) // as a store might
	defer stop()
	cancel()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a child of the context was not cancelled with its parent")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err after the parent's cancel = %v", c.Err())
	}
	c.release()
}
