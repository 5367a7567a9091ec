package supervisor

import (
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// Defaults.
const (
	DefaultTTL = 15 * time.Second
	// MinMargin is the least default Margin.
	MinMargin = 20 * time.Millisecond
)

// NoGrace, as Config.Grace, sends SIGKILL right after the stop signal.
// (A zero Grace means the default.)
const NoGrace time.Duration = -1

// Config says which lease to hold and how. Zero fields take the defaults
// given; Validate fills them in.
type Config struct {
	// Path is the lease file (--lease). Required.
	Path string
	// TTL is the lease's time-to-live (--ttl). Default: 15s.
	TTL time.Duration
	// RenewInterval is how often the lease is renewed (--renew). It must
	// be less than TTL. Default: TTL/3.
	RenewInterval time.Duration
	// Grace is the time between the stop signal and SIGKILL (--grace),
	// both when renewals keep failing and after a TERM, INT or QUIT.
	// Default: TTL/3; NoGrace for none.
	Grace time.Duration
	// Margin is the time SIGKILL is given to take effect before the lease
	// can lapse: the child is killed at Deadline - Margin. Default:
	// max(TTL/10, 20ms).
	Margin time.Duration
	// Wait stands by until the lease can be taken, instead of failing
	// with ExitHeld (--wait).
	Wait bool
	// WaitTimeout bounds the wait (--wait-timeout). Zero waits forever.
	WaitTimeout time.Duration
	// StopSignal asks the child to stop (--stop-signal). Default: SIGTERM.
	StopSignal os.Signal
	// Meta is stored in the lease record (--meta).
	Meta map[string]string
	// Logger receives one line per event. Default: none. It should not
	// block for long: the guard never waits for it, but Run logs the
	// child's start before its guard runs. (The leaserun command writes
	// through a buffer that drops lines rather than block.)
	Logger *slog.Logger
	// KillOrphans makes the process a child subreaper (Linux), so that what
	// the command leaves behind outside its process group (a daemon that
	// called setsid) is reparented to it, and kills all of that once the
	// command has exited, before the lease is released. It changes the
	// whole process, and kills every child it has then: the leaserun
	// command sets it; a Go program with other children should not.
	KillOrphans bool
	// ForwardSIGPIPE makes Run forward SIGPIPE too, on Linux. A write of
	// the process's own to a pipe or socket whose reader is gone raises
	// SIGPIPE as well, and Run can't tell that one from one sent with kill:
	// set it only if, while Run runs, the process makes such writes from a
	// thread that blocks SIGPIPE alone (the kernel raises a write's SIGPIPE
	// on the thread that wrote), as the leaserun command does for its log.
	ForwardSIGPIPE bool
	// LeaseOptions are passed on to lease.Acquire and lease.Wait (e.g.
	// lease.WithClockSkew); the supervisor adds WithMeta.
	LeaseOptions []lease.Option

	hooks *hooks // test seams
}

// hooks let tests get between the supervisor and the lease.
type hooks struct {
	renew func(*lease.Lease) error // instead of (*Lease).Renew
	reap  bool                     // reap orphans as if PID 1
}

// Validate fills in the defaults of zero fields and checks the settings, in
// the spirit of client-go's leader election: TTL > 0, 0 < RenewInterval <
// TTL, and RenewInterval + Grace + Margin < TTL, so that at least one
// renewal is attempted before the child must be stopped. Errors are
// *UsageError (errors.Is(err, ErrUsage)) naming the flag at fault.
func (c *Config) Validate() error {
	switch {
	case c.Path == "":
		return usagef("lease", "the lease path is required")
	case c.TTL < 0:
		return usagef("ttl", "%v: must be positive", c.TTL)
	case c.RenewInterval < 0:
		return usagef("renew", "%v: must be positive", c.RenewInterval)
	case c.Margin < 0:
		return usagef("", "margin %v: must not be negative", c.Margin)
	case c.WaitTimeout < 0:
		return usagef("wait-timeout", "%v: must not be negative", c.WaitTimeout)
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	defaulted := c.RenewInterval == 0 && c.Grace == 0
	if c.RenewInterval == 0 {
		c.RenewInterval = c.TTL / 3
	}
	if c.Grace == 0 {
		c.Grace = c.TTL / 3
	}
	if c.Margin == 0 {
		c.Margin = max(c.TTL/10, MinMargin)
	}
	if c.StopSignal == nil {
		c.StopSignal = syscall.SIGTERM
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if _, ok := c.StopSignal.(syscall.Signal); !ok || c.StopSignal.(syscall.Signal) <= 0 {
		return usagef("stop-signal", "%v: not a signal", c.StopSignal)
	}
	for k := range c.Meta {
		if k == "" {
			return usagef("meta", "empty key")
		}
	}
	if c.RenewInterval >= c.TTL {
		return usagef("renew", "%v: must be less than --ttl %v", c.RenewInterval, c.TTL)
	}
	if c.RenewInterval+c.grace()+c.Margin >= c.TTL && defaulted {
		// Only the TTL was given: say so, not what follows from it.
		return usagef("ttl", "%v: too short: with --renew and --grace at a third of it, "+
			"the %v it takes to SIGKILL the child leaves no room before the lease can lapse; "+
			"give more than %v", c.TTL, c.Margin, 3*c.Margin)
	}
	if c.RenewInterval+c.grace()+c.Margin >= c.TTL {
		return usagef("grace", "%v leaves no room to kill the child before the lease can lapse: "+
			"--renew %v + --grace %v + %v for SIGKILL must be less than --ttl %v",
			c.grace(), c.RenewInterval, c.grace(), c.Margin, c.TTL)
	}
	return nil
}

// grace is the effective grace: NoGrace counts as none.
func (c *Config) grace() time.Duration { return max(c.Grace, 0) }

// retryInterval is how soon a failed renewal is tried again.
func (c *Config) retryInterval() time.Duration { return max(c.RenewInterval/4, time.Millisecond) }

func (c *Config) leaseOptions() []lease.Option {
	opts := append([]lease.Option(nil), c.LeaseOptions...)
	if len(c.Meta) > 0 {
		opts = append(opts, lease.WithMeta(c.Meta))
	}
	return opts
}
