package lease_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/lease"
)

// A renewal's RenewedAt can be longer in JSON than the acquisition's
// (RFC 3339 drops trailing zeros). A record that grew past MaxRecordSize
// would read as unreadable, hence free: Acquire must leave room for that.
func TestRenewCannotOutgrowMaxRecordSize(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // no fractional seconds
	clk := fakeclock.New(t0)
	ttl := 10 * time.Second
	// The largest Meta an acquisition at t0 could carry without the margin.
	probe := lease.Record{InstanceID: "00000000-0000-0000-0000-000000000000", Host: "h",
		AcquiredAt: t0, RenewedAt: t0, TTL: ttl, Meta: map[string]string{"x": ""}, Epoch: 1}
	for _, path := range []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")} {
		l, err := lease.Acquire(path, ttl, lease.WithClock(clk), lease.WithMeta(map[string]string{"x": "a"}))
		if err != nil {
			t.Fatal(err)
		}
		probe.PID, probe.Host, probe.InstanceID = l.Record().PID, l.Record().Host, l.InstanceID()
		l.Release()
	}
	b, _ := json.Marshal(probe)
	pad := lease.MaxRecordSize - len(b) - 1
	path := filepath.Join(t.TempDir(), "l")
	l, err := lease.Acquire(path, ttl, lease.WithClock(clk), lease.WithMeta(map[string]string{"x": strings.Repeat("a", pad)}))
	if err == nil {
		clk.Advance(time.Second + 123456789*time.Nanosecond) // nine fractional digits
		renewErr := l.Renew()
		st, rerr := lease.Read(path, lease.WithClock(clk))
		if renewErr == nil && (rerr != nil || st.State != lease.StateHeld) {
			t.Fatalf("after a renewal the lease reads as %v (%v) while its holder holds", st.State, rerr)
		}
		return
	}
	if !errors.Is(err, lease.ErrInvalid) {
		t.Fatalf("Acquire with a Meta at the size limit: %v, want ErrInvalid", err)
	}
}

// A stale holder whose lease was taken over long ago, and whose next
// version's name cleanup has removed since, must learn from Release that it
// was not the holder: ErrLost, and the new holder keeps the lease.
func TestStaleReleaseAfterCleanupIsLost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	clk := clockAt(0)
	h, err := lease.Acquire(path, time.Second, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	c, err := lease.Acquire(path, time.Hour, lease.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	for range 30 { // enough versions for cleanup to remove version 2's name
		clk.Advance(time.Millisecond)
		if err := c.Renew(); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Release(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("stale Release = %v, want ErrLost", err)
	}
	st, err := lease.Read(path, lease.WithClock(clk))
	if err != nil || st.State != lease.StateHeld || st.Record.InstanceID != c.InstanceID() {
		t.Fatalf("after the stale Release: %v %+v %v; want held by the new holder", st.State, st.Record, err)
	}
}
