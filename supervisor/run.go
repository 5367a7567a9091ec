package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/oklog/run"

	"github.com/leaserun/leaserun/lease"
)

// Run runs cmd while holding the lease cfg describes, and never lets it
// outlive the lease. It returns the status to exit with and, when Run itself
// caused the status rather than the child, an error saying why; errors carry
// their status (ExitCode), and those about the lease wrap lease.ErrHeld or
// lease.ErrLost.
//
// In order: it validates cfg (ExitUsage), looks the command up
// (ExitNotFound, ExitCannotExec), takes the lease or stands by for it
// (ExitHeld; ExitIO for an I/O error; 128+N when signal N ends the wait,
// after giving back a lease it was taking, for cfg.TTL at most or until a
// second such signal),
// starts the child in its own process group with the lease in its
// environment, and runs these actors until the child has exited: the child,
// the renewer, the deadline guard, the signal forwarder, the hangup (see
// hangup: a stopped child whose job control is gone is hung up) and, as
// PID 1, the reaper. When the lease is lost the child's group is killed at once and the
// status is ExitLost; the loss is logged as it is noticed, so unlike other
// errors a *LostError needs no reporting. Finally it releases the lease and
// returns the child's status (128+N when signal N killed it).
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
// Cancelling
// ctx stops the child as a TERM would: the stop signal, then SIGKILL after
// the grace period.
func Run(ctx context.Context, cfg Config, cmd Command) (int, error) {
	if err := cfg.Validate(); err != nil {
		return ExitUsage, err
	}
	if len(cmd.Args) == 0 || cmd.Args[0] == "" {
		return ExitUsage, usagef("", "no command to run")
	}
	if !processGroups {
		return ExitCannotExec, &ExitError{Code: ExitCannotExec, Err: fmt.Errorf("%w: %w", ErrUnsupported, errors.ErrUnsupported)}
	}
	path, err := lookPath(cmd.Args[0])
	if err != nil {
		return ExitCode(err), err
	}
	if abs, err := filepath.Abs(cfg.Path); err == nil {
		cfg.Path = abs
	}
	log := cfg.Logger.With("lease", cfg.Path)

	sc := catchSignals(cfg.ForwardSIGPIPE)
	stopped := false
	defer func() {
		if !stopped {
			sc.stop()
		}
		sc.release()
	}()
	subreaper := cfg.KillOrphans && becomeSubreaper()
	reap := newReaper(subreaper || cfg.hooks != nil && cfg.hooks.reap)
	defer reap.close()

	l, err := acquire(ctx, &cfg, sc.C)
	if err != nil {
		return ExitCode(err), err
	}
	log.Info("acquired", "instance", l.InstanceID(), "epoch", l.Epoch(), "ttl", cfg.TTL)
	sc.wait() // every signal is caught before the child starts
	code, err := hold(ctx, &cfg, l, path, &cmd, sc.C, reap, log)
	if subreaper {
		killOrphans() // before the release: nothing may outlive the lease
	}
	// The child is gone: a TERM during a release hung in a stuck
	// filesystem may end leaserun. (The signals are let go only as Run
	// returns, in the background: see catcher.)
	sc.stop()
	stopped = true
	release(l, log)
	return code, err
}

// hold runs the child under the lease l.
func hold(ctx context.Context, cfg *Config, l *lease.Lease, path string, cmd *Command,
	sigs <-chan os.Signal, reap *reaper, log *slog.Logger) (int, error) {
	c := cmd.command(path, cfg.Path, l)
	term := takeTerminal(c)
	ch, err := startChild(c, reap)
	if err != nil {
		term.restore() // the child may have taken the terminal before exec failed
		return ExitCannotExec, &ExitError{Code: ExitCannotExec,
			Err: fmt.Errorf("%w: %s: %w", ErrCannotExec, cmd.Args[0], err)}
	}
	ignoreTTOU()
	log.Info("child started", "pid", c.Process.Pid, "command", cmd.Args[0])

	var lost outcome
	var g run.Group
	g.Add(ch.wait, ch.interrupt)
	rn := newRenewer(cfg, l, log)
	g.Add(rn.run, rn.interrupt)
	gd := &guard{quit: newQuit(), l: l, grace: cfg.grace(), margin: cfg.Margin, log: log,
		stop: func(err *LostError) {
			lost.set(err)
			ch.group.signal(cfg.StopSignal)
		},
		kill: func() {
			ch.group.signal(syscall.SIGKILL)
			log.Warn("killed the child", "signal", "SIGKILL")
		},
	}
	g.Add(gd.run, gd.interrupt)
	fw := &forwarder{quit: newQuit(), sigs: sigs, ctxDone: ctx.Done(), group: ch.group, expired: l.Expired,
		stopSignal: cfg.StopSignal, grace: cfg.grace(), log: log}
	g.Add(fw.run, fw.interrupt)
	if reap != nil {
		g.Add(reap.run, reap.interrupt)
	}
	hu := &hangup{quit: newQuit(), job: ch.job, group: ch.group, orphaned: pgrpOrphaned, log: log}
	g.Add(hu.run, hu.interrupt)
	var lostErr *LostError
	if errors.As(g.Run(), &lostErr) {
		// The group killed the child when this actor returned; only now
		// may the loss be logged (the log may block on a stuck stderr).
		if lost.get() == nil { // else the guard logged it as it stopped the child
			log.Error("lease lost", "err", lostErr)
		}
		lost.set(lostErr)
	}
	term.restore()

	log.Info("child exited", ch.describe()...)
	if err := lost.get(); err != nil {
		return ExitLost, err
	}
	if !ch.exitedAt.Before(l.Deadline()) {
		err := &LostError{Path: cfg.Path, Reason: "the child outlived the lease (was the process frozen?)"}
		log.Error("lease lost", "err", err)
		return ExitLost, err
	}
	return ch.exitCode(), nil
}

// outcome is the first loss noticed.
type outcome struct {
	mu   sync.Mutex
	lost *LostError
}

func (o *outcome) set(err *LostError) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lost == nil {
		o.lost = err
	}
}

func (o *outcome) get() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lost == nil {
		return nil
	}
	return o.lost
}
