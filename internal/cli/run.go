package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/supervisor"
)

// runCmd is "leaserun [run]".
type runCmd struct {
	Lease        string         `short:"l" required:"" env:"LEASERUN_LEASE" placeholder:"PATH" help:"The lease: a file path or a URL."`
	TTL          time.Duration  `short:"t" default:"15s" env:"LEASERUN_TTL" help:"Lease time-to-live."`
	Renew        *time.Duration `env:"LEASERUN_RENEW" placeholder:"DURATION" help:"How often to renew (default: ttl/3)."`
	Wait         bool           `short:"w" env:"LEASERUN_WAIT" help:"Wait for the lease instead of exiting."`
	WaitTimeout  time.Duration  `default:"0" env:"LEASERUN_WAIT_TIMEOUT" help:"Give up waiting after this long; implies --wait."`
	ClockSkew    time.Duration  `default:"0" env:"LEASERUN_CLOCK_SKEW" placeholder:"DURATION" help:"Most the hosts' clocks may differ by."`
	Grace        *time.Duration `env:"LEASERUN_GRACE" placeholder:"DURATION" help:"Stop signal to SIGKILL (default: ttl/3)."`
	StopSignal   signalFlag     `default:"TERM" env:"LEASERUN_STOP_SIGNAL" placeholder:"SIGNAL" help:"Signal that asks the child to stop (TERM)."`
	HeldExitCode int            `default:"75" env:"LEASERUN_HELD_EXIT_CODE" placeholder:"N" help:"Status when the lease is held (75)."`
	Meta         []string       `sep:"none" placeholder:"KEY=VALUE" help:"Stored in the record; repeatable."`
	MaxRuntime   time.Duration  `default:"0" env:"LEASERUN_MAX_RUNTIME" placeholder:"DURATION" help:"Stop the child after this long, exit 124; 0: no limit."`
	OncePer      time.Duration  `default:"0" env:"LEASERUN_ONCE_PER" placeholder:"DURATION" help:"Run at most once per slot of this length; 0: off."`
	HealthAddr   string         `env:"LEASERUN_HEALTH_ADDR" placeholder:"ADDR" help:"Serve /healthz, /leader and /metrics on ADDR."`
	LogFormat    string         `enum:"text,json" default:"text" env:"LEASERUN_LOG_FORMAT" help:"Format of leaserun's log on stderr."`
	LogLevel     string         `enum:"debug,info,warn,error" default:"warn" env:"LEASERUN_LOG_LEVEL" help:"Least level logged; info logs each event."`

	Command []string `arg:"" passthrough:"partial" help:"The command to run, and its arguments."`

	cfg supervisor.Config
}

// flagNames names supervisor.Config's fields, in the errors of its
// Validate, as the flags that set them.
var flagNames = strings.NewReplacer("Path", "--lease", "TTL", "--ttl", "RenewInterval", "--renew",
	"Grace", "--grace", "WaitTimeout", "--wait-timeout", "StopSignal", "--stop-signal", "Meta", "--meta",
	"MaxRuntime", "--max-runtime", "OncePer", "--once-per")

// Validate makes the supervisor's Config of the flags, and checks it.
func (r *runCmd) Validate() error {
	if len(r.Command) > 0 && r.Command[0] == "--" {
		// Kong keeps the -- of "leaserun run --lease p -- cmd" for a
		// passthrough argument (not so without "run").
		r.Command = r.Command[1:]
	}
	if _, err := parseLease(r.Lease); err != nil {
		return err
	}
	r.cfg = supervisor.NewConfig(r.Lease, r.TTL)
	if r.Renew != nil {
		r.cfg.RenewInterval = *r.Renew
	}
	if r.Grace != nil {
		r.cfg.Grace = *r.Grace
	}
	r.cfg.Wait = r.Wait || r.WaitTimeout > 0 // like flock -w, a timeout implies waiting
	r.cfg.WaitTimeout = r.WaitTimeout
	r.cfg.StopSignal = r.StopSignal.sig
	r.cfg.KillOrphans = true
	r.cfg.ForwardSIGPIPE = true // its log raises none of its own (see logWriter)
	r.cfg.LeaseOptions = []lease.Option{lease.WithClockSkew(r.ClockSkew)}
	r.cfg.MaxRuntime = r.MaxRuntime
	r.cfg.OncePer = r.OncePer
	for _, kv := range r.Meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageErrorf("--meta: %q: expected KEY=VALUE", kv)
		}
		if r.cfg.Meta == nil {
			r.cfg.Meta = map[string]string{}
		}
		r.cfg.Meta[k] = v
	}
	if err := r.cfg.Validate(); err != nil {
		return usageError(flagNames.Replace(err.Error()))
	}
	switch {
	case r.ClockSkew < 0:
		return usageErrorf("--clock-skew: %v: must not be negative", r.ClockSkew)
	case r.HeldExitCode < 0 || r.HeldExitCode > 255:
		return usageErrorf("--held-exit-code: %d: must be between 0 and 255", r.HeldExitCode)
	case len(r.Command) == 0 || r.Command[0] == "":
		return usageErrorf("no command to run: leaserun --lease PATH [flags] -- COMMAND [ARG...]")
	case r.HealthAddr != "":
		return checkHealthAddr(r.HealthAddr)
	}
	return nil
}

// Run runs the command, and ends leaserun with its status.
func (r *runCmd) Run(kctx *kong.Context, ls *leases) error {
	if r.HealthAddr != "" && ls.health == nil {
		// A file lease is served with --health-addr by leaserun-http,
		// which links the health server; a network store's, by its
		// executable (open hands it there), which links it too.
		if at, _ := parseLease(r.Lease); at.scheme == "" {
			return leaseError(kctx.Stderr, ls.handOff("--health-addr "+r.HealthAddr, "health checks are", healthServer))
		}
	}
	st, name, err := ls.open(context.Background(), r.Lease)
	if err != nil {
		return leaseError(kctx.Stderr, err)
	}
	r.cfg.Store, r.cfg.Path = st, name
	w := newLogWriter(kctx.Stderr)
	defer w.Close(logFlushTimeout)
	log := newLogger(w, r.LogFormat, r.LogLevel)
	r.cfg.Logger = log
	cmd := exec.Command(r.Command[0], r.Command[1:]...)
	if errors.Is(cmd.Err, exec.ErrDot) {
		cmd.Err = nil // a relative PATH entry: a shell would run it too
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if r.HealthAddr == "" {
		err = supervisor.Run(context.Background(), r.cfg, cmd)
	} else {
		if ls.health == nil {
			// An executable that links a store but not the health server.
			return leaseError(kctx.Stderr, fmt.Errorf("--health-addr %s: this executable does not serve health checks", r.HealthAddr))
		}
		r.cfg.Stats = supervisor.NewStats()
		h, lerr := ls.health(r.HealthAddr, r.cfg.Stats, log)
		if lerr != nil {
			log.Error(fmt.Sprintf("--health-addr %s: %v", r.HealthAddr, lerr), "lease", r.Lease, "status", exitIO)
			return exitStatus(exitIO)
		}
		log.Info("serving health checks", "addr", h.Addr())
		err = h.Run(context.Background(), func(ctx context.Context) error {
			return supervisor.Run(ctx, r.cfg, cmd)
		})
	}
	code := r.exitCode(err)
	var exit *supervisor.ExitError
	if err == nil || errors.As(err, &exit) || errors.Is(err, lease.ErrLost) || errors.As(err, new(*supervisor.MaxRuntimeError)) {
		// The child's status, or a loss or a stop for --max-runtime
		// logged when it was noticed.
		return exitStatus(code)
	}
	msg := err.Error()
	if errors.Is(err, lease.ErrHeld) && errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("gave up after --wait-timeout %v: %v", r.WaitTimeout, err)
	}
	level := slog.LevelError
	if code == 0 {
		// --held-exit-code 0, or --once-per in a slot that has had its
		// run: a skipped run is silent.
		level = slog.LevelDebug
	}
	log.Log(context.Background(), level, msg, "lease", r.Lease, "status", code)
	return exitStatus(code)
}

// exitCode is the status for what supervisor.Run returned.
func (r *runCmd) exitCode(err error) int {
	var exit *supervisor.ExitError
	var interrupted *supervisor.InterruptedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.Code
	case errors.As(err, &interrupted):
		return 128 + int(interrupted.Signal)
	case errors.As(err, new(*supervisor.MaxRuntimeError)):
		return exitTimeout
	case errors.Is(err, lease.ErrDone):
		return 0
	case errors.Is(err, lease.ErrLost):
		return exitLost
	case errors.Is(err, lease.ErrHeld):
		return r.HeldExitCode
	case errors.Is(err, lease.ErrInvalid):
		return exitUsage
	case errors.Is(err, supervisor.ErrNotFound):
		return exitNotFound
	case errors.Is(err, supervisor.ErrCannotExec):
		return exitCannotExec
	case errors.As(err, new(*supervisor.IOError)):
		return exitIO
	}
	return 1
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
