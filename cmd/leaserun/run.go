package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/supervisor"
)

// runCmd is "leaserun [run]".
type runCmd struct {
	Lease        string        `name:"lease" short:"l" required:"" env:"LEASERUN_LEASE" placeholder:"PATH" help:"The lease file."`
	TTL          time.Duration `name:"ttl" short:"t" default:"15s" env:"LEASERUN_TTL" help:"Lease time-to-live."`
	Renew        optDuration   `name:"renew" env:"LEASERUN_RENEW" placeholder:"DURATION" help:"How often to renew (default: ttl/3)."`
	Wait         bool          `name:"wait" short:"w" env:"LEASERUN_WAIT" help:"Stand by until the lease can be taken, instead of exiting 75."`
	WaitTimeout  time.Duration `name:"wait-timeout" default:"0" env:"LEASERUN_WAIT_TIMEOUT" help:"Give up waiting after this long (exit 75); implies --wait; 0 waits forever."`
	ClockSkew    time.Duration `name:"clock-skew" default:"0" env:"LEASERUN_CLOCK_SKEW" placeholder:"DURATION" help:"How far apart the clocks of the hosts sharing the lease may be: a one-shot run counts a record as held until its expiry plus this; a standby needs none. Default 0; across hosts, above the worst offset NTP allows there, e.g. 1s."`
	Grace        optDuration   `name:"grace" env:"LEASERUN_GRACE" placeholder:"DURATION" help:"Time between the stop signal and SIGKILL (default: ttl/3)."`
	StopSignal   signalFlag    `name:"stop-signal" default:"TERM" env:"LEASERUN_STOP_SIGNAL" placeholder:"SIGNAL" help:"Signal that asks the child to stop: TERM (the default), SIGTERM and 15 all work."`
	HeldExitCode int           `name:"held-exit-code" default:"75" env:"LEASERUN_HELD_EXIT_CODE" placeholder:"N" help:"Status when the lease is held or the wait timed out: 75 by default; 0 makes a skipped cron run silent."`
	Meta         []string      `name:"meta" sep:"none" placeholder:"KEY=VALUE" help:"Stored in the record's meta; repeatable."`
	LogFormat    string        `name:"log-format" enum:"text,json" default:"text" env:"LEASERUN_LOG_FORMAT" help:"Format of leaserun's own log lines on stderr: text or json."`
	LogLevel     string        `name:"log-level" enum:"debug,info,warn,error" default:"warn" env:"LEASERUN_LOG_LEVEL" help:"debug, info, warn or error. The default, warn, is silent when all goes well; info logs each event (acquired, waiting, child started and exited, released)."`

	Command []string `arg:"" name:"command" passthrough:"partial" help:"The command to run, and its arguments."`

	cfg supervisor.Config
}

// validate checks the values kong can't, and the settings together.
func (r *runCmd) validate() error {
	if len(r.Command) > 0 && r.Command[0] == "--" {
		// Kong keeps the -- of "leaserun run --lease p -- cmd" for a
		// passthrough argument (not so without "run").
		r.Command = r.Command[1:]
	}
	switch {
	case r.Lease == "":
		return &supervisor.UsageError{Flag: "lease", Msg: "the lease path is required"}
	case r.TTL <= 0:
		return &supervisor.UsageError{Flag: "ttl", Msg: fmt.Sprintf("%v: must be positive", r.TTL)}
	case r.Renew.set && r.Renew.d <= 0:
		return &supervisor.UsageError{Flag: "renew", Msg: fmt.Sprintf("%v: must be positive", r.Renew.d)}
	case r.Grace.set && r.Grace.d < 0:
		return &supervisor.UsageError{Flag: "grace", Msg: fmt.Sprintf("%v: must not be negative", r.Grace.d)}
	case r.WaitTimeout < 0:
		return &supervisor.UsageError{Flag: "wait-timeout", Msg: fmt.Sprintf("%v: must not be negative", r.WaitTimeout)}
	case r.ClockSkew < 0:
		return &supervisor.UsageError{Flag: "clock-skew", Msg: fmt.Sprintf("%v: must not be negative", r.ClockSkew)}
	case r.HeldExitCode < 0 || r.HeldExitCode > 255:
		return &supervisor.UsageError{Flag: "held-exit-code", Msg: fmt.Sprintf("%d: must be between 0 and 255", r.HeldExitCode)}
	case len(r.Command) == 0 || r.Command[0] == "":
		return &supervisor.UsageError{Msg: "no command to run: leaserun --lease PATH [flags] -- COMMAND [ARG...]"}
	}
	var meta map[string]string
	for _, kv := range r.Meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return &supervisor.UsageError{Flag: "meta", Msg: fmt.Sprintf("%q: expected KEY=VALUE", kv)}
		}
		if meta == nil {
			meta = map[string]string{}
		}
		meta[k] = v
	}
	r.cfg = supervisor.Config{
		Path:          r.Lease,
		TTL:           r.TTL,
		RenewInterval: r.Renew.d,
		Grace:         r.Grace.d,
		Wait:          r.Wait || r.WaitTimeout > 0, // like flock -w, a timeout implies waiting
		WaitTimeout:   r.WaitTimeout,
		StopSignal:    r.StopSignal.sig,
		Meta:          meta,
		KillOrphans:   true,
		LeaseOptions:  []lease.Option{lease.WithClockSkew(r.ClockSkew)},
	}
	r.cfg.ForwardSIGPIPE = true // its log raises none of its own (see logWriter)
	if r.Grace.set && r.Grace.d == 0 {
		r.cfg.Grace = supervisor.NoGrace
	}
	return r.cfg.Validate()
}

// run runs the command and returns the status to exit with.
func (r *runCmd) run(stderr io.Writer) int {
	w := newLogWriter(stderr)
	defer w.Close(logFlushTimeout)
	log := newLogger(w, r.LogFormat, r.LogLevel)
	r.cfg.Logger = log
	code, err := supervisor.Run(context.Background(), r.cfg, supervisor.Command{Args: r.Command})
	if err == nil {
		return code
	}
	if errors.Is(err, lease.ErrHeld) && !errors.Is(err, supervisor.ErrInterrupted) {
		code = r.HeldExitCode
	}
	var lost *supervisor.LostError
	if errors.As(err, &lost) {
		return code // logged when it was noticed
	}
	level := slog.LevelError
	if code == 0 {
		level = slog.LevelDebug // --held-exit-code 0: a skipped run is silent
	}
	log.Log(context.Background(), level, err.Error(), "lease", r.Lease, "status", code)
	return code
}

// logFlushTimeout bounds how long leaserun waits, before it exits, for a
// stderr that is not being read.
const logFlushTimeout = time.Second

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(level)) // kong checked it against the enum
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
