package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// Config says which lease to hold and how. NewConfig fills in the defaults;
// Validate checks it.
type Config struct {
	// Path names the lease: the lease file, when Store is nil; otherwise
	// what logs, errors and the child's LEASERUN_LEASE_PATH call the lease
	// (Store.String() when empty). Path or Store is required.
	Path string
	// Store is where the lease lives, for a lease on a store other than a
	// file (lease.Store). Nil means the file lease at Path.
	Store lease.Store
	// TTL is the lease's time-to-live. Required.
	TTL time.Duration
	// RenewInterval is how often the lease is renewed. It must be positive
	// and less than TTL.
	RenewInterval time.Duration
	// Grace is the time between the stop signal and SIGKILL, both when
	// renewals keep failing and after a TERM, INT or QUIT. Zero sends
	// SIGKILL right after the stop signal.
	Grace time.Duration
	// Margin is the time SIGKILL is given to take effect before the lease
	// can lapse: the child is killed at Deadline - Margin. It must be
	// positive.
	Margin time.Duration
	// Wait stands by until the lease can be taken, instead of failing
	// with an error that wraps lease.ErrHeld.
	Wait bool
	// WaitTimeout bounds the wait. Zero waits forever.
	WaitTimeout time.Duration
	// StopSignal asks the child to stop. Nil means SIGTERM.
	StopSignal os.Signal
	// Meta is stored in the lease record.
	Meta map[string]string
	// Logger receives one line per event. Nil means none. It should not
	// block for long: the guard never waits for it, but Run logs the
	// child's start before its guard runs.
	Logger *slog.Logger
	// KillOrphans makes the process a child subreaper (Linux), so that what
	// the command leaves behind outside its process group (a daemon that
	// called setsid) is reparented to it, and kills all of that once the
	// command has exited, before the lease is released. It changes the
	// whole process, and kills every child it has then: a program with
	// other children should not set it.
	KillOrphans bool
	// ForwardSIGPIPE makes Run forward SIGPIPE too, on Linux. A write of
	// the process's own to a pipe or socket whose reader is gone raises
	// SIGPIPE as well, and Run can't tell that one from one sent with kill:
	// set it only if, while Run runs, the process makes such writes from a
	// thread that blocks SIGPIPE alone (the kernel raises a write's SIGPIPE
	// on the thread that wrote).
	ForwardSIGPIPE bool
	// LeaseOptions are passed on to lease.Acquire, lease.Wait and
	// lease.Read (e.g. lease.WithClockSkew); the supervisor adds WithMeta,
	// and WithOncePer for OncePer.
	LeaseOptions []lease.Option
	// MaxRuntime bounds how long the command runs: once it has run this
	// long, Run stops it as it stops a child whose lease can no longer be
	// kept (the stop signal, then SIGKILL to its group after Grace),
	// releases the lease and returns a *MaxRuntimeError; Do cancels its
	// function's context. Zero means no bound. A hung job no longer holds
	// its lease forever.
	MaxRuntime time.Duration
	// OncePer runs the command at most once per slot of this length
	// (lease.WithOncePer: slots aligned to the Unix epoch, UTC) across
	// every process sharing the lease: when the current slot has had its
	// run, Run and Do return an error wrapping lease.ErrDone without
	// running anything. The record keeps the slot, and Run's release
	// records the run's exit status in it (lease.Lease.ReleaseWithStatus):
	// the command's status, 124 when MaxRuntime stopped it, 126 when it
	// could not be started; Do's, 0 or 1 by its function's error. Zero
	// means no slots.
	OncePer time.Duration
	// Stats, when not nil, receives what happens to the lease, as it
	// happens (see Stats).
	Stats *Stats

	hooks *hooks // test seams
}

// hooks let tests get between the supervisor and the lease.
type hooks struct {
	renew func(*lease.Lease) error // instead of (*Lease).Renew
	reap  bool                     // reap orphans as if PID 1
}

// minMargin is the least default Margin.
const minMargin = 20 * time.Millisecond

// NewConfig returns the Config of the lease at path with the given TTL and
// the defaults: RenewInterval and Grace a third of the TTL, Margin a tenth
// of it but at least 20ms.
func NewConfig(path string, ttl time.Duration) Config {
	return Config{Path: path, TTL: ttl, RenewInterval: ttl / 3, Grace: ttl / 3, Margin: max(ttl/10, minMargin)}
}

// ConfigError is a Config that Validate rejects. Its message names fields
// by their names in Config ("RenewInterval: 5s: must be less than TTL 3s"),
// so that a program can name them as its user knows them (the leaserun
// command, as its flags).
type ConfigError struct {
	Field string // the field at fault
	Msg   string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

func configErrorf(field, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks the settings, as client-go's leader election does: TTL >
// 0, 0 < RenewInterval < TTL, and RenewInterval + Grace + Margin < TTL, so
// that at least one renewal is attempted before the child must be stopped.
// Its errors are *ConfigError.
func (c *Config) Validate() error {
	switch {
	case c.Path == "" && c.Store == nil:
		return configErrorf("Path", "the lease path is required")
	case c.TTL <= 0:
		return configErrorf("TTL", "%v: must be positive", c.TTL)
	case c.RenewInterval <= 0:
		return configErrorf("RenewInterval", "%v: must be positive", c.RenewInterval)
	case c.Grace < 0:
		return configErrorf("Grace", "%v: must not be negative", c.Grace)
	case c.Margin <= 0:
		return configErrorf("Margin", "%v: must be positive", c.Margin)
	case c.WaitTimeout < 0:
		return configErrorf("WaitTimeout", "%v: must not be negative", c.WaitTimeout)
	case c.MaxRuntime < 0:
		return configErrorf("MaxRuntime", "%v: must not be negative", c.MaxRuntime)
	case c.OncePer < 0:
		return configErrorf("OncePer", "%v: must not be negative", c.OncePer)
	}
	if s, ok := c.StopSignal.(syscall.Signal); c.StopSignal != nil && (!ok || s <= 0 || s > maxSignal()) {
		return configErrorf("StopSignal", "%v: not a signal", c.StopSignal)
	}
	if _, ok := c.Meta[""]; ok {
		return configErrorf("Meta", "empty key")
	}
	if c.RenewInterval >= c.TTL {
		return configErrorf("RenewInterval", "%v: must be less than TTL %v", c.RenewInterval, c.TTL)
	}
	if c.RenewInterval+c.Grace+c.Margin < c.TTL {
		return nil
	}
	if d := NewConfig(c.Path, c.TTL); c.RenewInterval == d.RenewInterval && c.Grace == d.Grace {
		// As NewConfig has them: say that the TTL is too short, not what
		// follows from it.
		return configErrorf("TTL", "%v: too short: with RenewInterval and Grace at a third of it, "+
			"the %v it takes to SIGKILL the child leaves no room before the lease can lapse; "+
			"give more than %v", c.TTL, c.Margin, 3*c.Margin)
	}
	return configErrorf("Grace", "%v leaves no room to kill the child before the lease can lapse: "+
		"RenewInterval %v + Grace %v + %v for SIGKILL must be less than TTL %v",
		c.Grace, c.RenewInterval, c.Grace, c.Margin, c.TTL)
}

// maxSignal is the highest signal number: 64 on Linux, which has real-time
// signals up to 64, and 31 elsewhere.
func maxSignal() syscall.Signal {
	if runtime.GOOS == "linux" {
		return 64
	}
	return 31
}

// logger is where the events go.
func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// retryInterval is how soon a failed renewal is tried again.
func (c *Config) retryInterval() time.Duration { return max(c.RenewInterval/4, time.Millisecond) }

func (c *Config) leaseOptions() []lease.Option {
	opts := append([]lease.Option(nil), c.LeaseOptions...)
	if len(c.Meta) > 0 {
		opts = append(opts, lease.WithMeta(c.Meta))
	}
	if c.OncePer > 0 {
		opts = append(opts, lease.WithOncePer(c.OncePer))
	}
	return opts
}

// resolveStore sets Store to the file lease at Path, made absolute, when it
// is nil, and Path to Store.String() when it is empty.
func (c *Config) resolveStore() {
	if c.Store == nil {
		if abs, err := filepath.Abs(c.Path); err == nil {
			c.Path = abs
		}
		c.Store = lease.Files(c.Path)
	}
	if c.Path == "" {
		c.Path = c.Store.String()
	}
}
