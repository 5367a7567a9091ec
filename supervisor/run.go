package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
)

// Environment variables the child gets.
const (
	EnvLeasePath  = "LEASERUN_LEASE_PATH"
	EnvInstanceID = "LEASERUN_INSTANCE_ID"
	EnvEpoch      = "LEASERUN_EPOCH"
	// EnvSlot is the start of the slot the command runs for, in RFC 3339
	// and UTC (2030-06-01T12:00:00Z), with Config.OncePer only: a job that
	// starts late in its slot still knows which one it runs for.
	EnvSlot = "LEASERUN_SLOT"
)

// Run runs cmd while holding the lease cfg describes, and never lets it
// outlive the lease. It returns nil when the lease was taken and cmd exited
// 0, and otherwise an error that says why:
//
//   - a *ConfigError when Validate rejects cfg;
//   - one that wraps ErrNotFound or ErrCannotExec when cmd can't be started
//     (its Err, as exec.Command sets it, or a Path that can't be executed:
//     checked before the lease is taken);
//   - lease.Acquire's or lease.Wait's, which wraps lease.ErrHeld when the
//     lease is held (and context.DeadlineExceeded when cfg.WaitTimeout
//     passed) or lease.ErrInvalid for a bad lease setting;
//   - an *IOError when the lease file could not be read or written;
//   - an *InterruptedError when a TERM, INT, HUP or QUIT ended the wait,
//     after giving back a lease it was taking (for cfg.TTL at most, or until
//     a second such signal);
//   - a *LostError (errors.Is(err, lease.ErrLost)) when the lease was lost
//     while cmd ran: cmd's process group was killed at once. The loss is
//     logged as it is noticed, so unlike other errors it needs no reporting;
//   - an *ExitError when cmd exited non-zero or was killed by a signal;
//   - a *MaxRuntimeError when cmd ran for cfg.MaxRuntime and was stopped;
//   - with cfg.OncePer, one that wraps lease.ErrDone when the current slot
//     has had its run: cmd was not started.
//
// Run starts cmd in its own process group, with its parent-death signal set
// (Linux), as the terminal's foreground process group when Run has the
// terminal (see takeTerminal), and with EnvLeasePath (absolute),
// EnvInstanceID, EnvEpoch and, with cfg.OncePer, EnvSlot added to its
// environment (cmd.Env, or the process's own when nil); it sets
// cmd.SysProcAttr for that. It then runs
// these actors until cmd has exited: the child, the renewer, the deadline
// guard, the signal forwarder, the hangup (a stopped child whose job
// control is gone is hung up) and, as PID 1, the reaper. Finally it
// releases the lease.
//
// Run catches the signals it forwards from when it is called until it
// returns (it lets them go in the background), but leaves alone one that is
// ignored when it is called (nohup's SIGHUP), so that the child inherits it
// ignored too: such a signal is not forwarded; once the child is gone, a
// TERM, INT or QUIT has its default effect (so one during a release hung in
// a stuck filesystem ends the process) and other signals are dropped. Job
// control cannot stop the process while the child runs: Run catches and
// drops SIGTTIN, and ignores SIGTTOU from the child's start. The Go runtime
// cannot restore their defaults: after Run returns, the process still drops
// SIGTTIN and ignores SIGTTOU, and processes it starts later inherit the
// ignored SIGTTOU (not SIGTTIN: a child gets a caught signal's default).
// Cancelling ctx stops the child as a TERM would: the stop signal, then
// SIGKILL after the grace period.
//
// The kernel gives a signal sent to the process to its main thread first
// (unless that thread blocks it or has one pending), and a thread held in a
// file server that no longer answers (a FUSE or hard NFS mount) keeps it
// from the Go runtime until the server answers. A program whose leases live
// on such a mount should keep its main thread idle, as the leaserun command
// does: lock the main goroutine to the main thread in an init function, and
// call Run on another goroutine.
//
// Run is not supported where there are no process groups (Windows): there
// its error wraps ErrCannotExec and errors.ErrUnsupported.
func Run(ctx context.Context, cfg Config, cmd *exec.Cmd) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := runnable(cmd); err != nil {
		return err
	}
	cfg.resolveStore()
	return supervise(ctx, &cfg, cmd)
}

// runnable says why cmd can't be started, if it can't: what exec.Command
// found when it looked the command up (cmd.Err), or, for a path it did not
// look up, that no executable file is there.
func runnable(cmd *exec.Cmd) error {
	err := cmd.Err
	if err == nil && (cmd.Path == "" || strings.ContainsRune(cmd.Path, filepath.Separator)) {
		_, err = exec.LookPath(cmd.Path)
	}
	if err == nil {
		return nil
	}
	name := cmd.Path
	if len(cmd.Args) > 0 {
		name = cmd.Args[0]
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return fmt.Errorf("%w: %s: %w", ErrCannotExec, name, err)
}
