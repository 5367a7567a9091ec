//go:build unix

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/run"

	"github.com/leaserun/leaserun/lease"
)

// supervise is Run once cfg and cmd have been checked.
func supervise(ctx context.Context, cfg *Config, cmd *exec.Cmd) error {
	log := cfg.logger().With("lease", cfg.Path)
	sc := catchSignals(cfg.ForwardSIGPIPE)
	defer func() {
		sc.stop() // if gone did not
		sc.release()
	}()
	subreaper := cfg.KillOrphans && becomeSubreaper()
	reap := newReaper(subreaper || cfg.hooks != nil && cfg.hooks.reap)
	defer reap.close()

	l, err := acquireInterruptibly(ctx, cfg, sc.C)
	if err != nil {
		return err
	}
	log.Info("acquired", "instance", l.InstanceID(), "epoch", l.Epoch(), "ttl", cfg.TTL)
	sc.wait() // every signal is caught before the child starts
	stopped := false
	gone := func() {
		if subreaper {
			killOrphans() // before the release: nothing may outlive the lease
		}
		// The child is gone: a TERM from now on, during a release hung in
		// a stuck filesystem, may end the process. (The signals are let
		// go only as Run returns, in the background: see catcher.)
		sc.stop()
		stopped = true
	}
	err = hold(ctx, cfg, l, cmd, sc.C, reap, log, gone)
	if !stopped {
		gone() // the child never started
	}
	release(l, log, slotStatus(cfg, err))
	return err
}

// acquireInterruptibly takes the lease as acquire does, unless a signal on
// sigs that ends a wait (TERM, INT, HUP, QUIT) comes first: then it returns
// an *InterruptedError, once the lease it may still take has been given
// back (see giveBack): at once for a standby between two looks at the
// lease, later when a read or write of the lease is in a slow file server's
// hands. Other signals that arrive before the child exists are dropped.
func acquireInterruptibly(ctx context.Context, cfg *Config, sigs <-chan os.Signal) (*lease.Lease, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan acquisition, 1)
	go func() {
		l, err := acquire(ctx, cfg)
		done <- acquisition{l, err}
	}()
	for {
		select {
		case r := <-done:
			return r.l, r.err
		case sig := <-sigs:
			if endsWait(sig) {
				cancel()
				giveBack(cfg, done, sigs)
				return nil, &InterruptedError{Path: cfg.Path, Signal: sig.(syscall.Signal)}
			}
		}
	}
}

// acquisition is the result of taking the lease, or of standing by for it.
type acquisition struct {
	l   *lease.Lease
	err error
}

// giveBack gives back the lease that an acquisition interrupted by a signal
// may still take, before the process exits: the acquisition's write may be
// in a slow file server's hands, and once made, the lease it takes would
// keep a standby out for a whole TTL after the process is gone. It waits
// for the acquisition's result on done, and for the release, for a TTL at
// most (about when such a lease lapses by itself; a hung file server must
// not hang the exit forever), and no longer once a second signal that ends
// a wait comes on sigs. The lease is then left to lapse; in a process that
// lives on (a Go program calling Run), a goroutine still releases it if the
// file server answers.
func giveBack(cfg *Config, done <-chan acquisition, sigs <-chan os.Signal) {
	log := cfg.logger().With("lease", cfg.Path)
	log.Debug("giving back the lease being taken, if any, before exiting", "within", cfg.TTL)
	given := make(chan struct{})
	go func() {
		defer close(given)
		if r := <-done; r.l != nil {
			release(r.l, log, nil)
		}
	}()
	deadline := time.NewTimer(cfg.TTL)
	defer deadline.Stop()
	for {
		select {
		case <-given:
			return
		case <-deadline.C:
			log.Warn("the file server did not answer in time: a lease taken meanwhile is not given back, and lapses by itself",
				"waited", cfg.TTL)
			return
		case sig := <-sigs:
			if endsWait(sig) {
				log.Warn(signalName(sig)+" again: a lease taken meanwhile is not given back, and lapses by itself", "ttl", cfg.TTL)
				return
			}
		}
	}
}

// hold runs cmd under the lease l. Once the child is gone, it calls gone
// before it logs so: a shutdown signal sent after that line is leaserun's,
// not the child's.
func hold(ctx context.Context, cfg *Config, l *lease.Lease, cmd *exec.Cmd,
	sigs <-chan os.Signal, reap *reaper, log *slog.Logger, gone func()) error {
	prepare(cmd, cfg.Path, l)
	term := takeTerminal(cmd)
	ch, err := startChild(cmd, reap)
	if err != nil {
		term.restore() // the child may have taken the terminal before exec failed
		return fmt.Errorf("%w: %s: %w", ErrCannotExec, cmd.Args[0], err)
	}
	started := time.Now()
	ignoreTTOU()
	log.Info("child started", "pid", cmd.Process.Pid, "command", cmd.Args[0])

	var lost outcome
	var g run.Group
	g.Add(ch.wait, ch.interrupt)
	rn := newRenewer(cfg, l, log)
	g.Add(rn.run, rn.interrupt)
	stopSignal := cfg.StopSignal
	if stopSignal == nil {
		stopSignal = syscall.SIGTERM
	}
	gd := &guard{quit: newQuit(), l: l, grace: cfg.Grace, margin: cfg.Margin, log: log,
		stop: func(err *LostError) {
			lost.set(err)
			ch.group.signal(stopSignal)
		},
		kill: func() {
			ch.group.signal(syscall.SIGKILL)
			log.Warn("killed the child", "signal", "SIGKILL")
		},
	}
	g.Add(gd.run, gd.interrupt)
	fw := &forwarder{quit: newQuit(), sigs: sigs, ctxDone: ctx.Done(), group: ch.group, expired: l.Expired,
		stopSignal: stopSignal, grace: cfg.Grace, log: log}
	g.Add(fw.run, fw.interrupt)
	if reap != nil {
		g.Add(reap.run, reap.interrupt)
	}
	hu := &hangup{quit: newQuit(), job: ch.job, group: ch.group, orphaned: pgrpOrphaned, log: log}
	g.Add(hu.run, hu.interrupt)
	var mr *maxRuntime
	if cfg.MaxRuntime > 0 {
		mr = &maxRuntime{quit: newQuit(), at: started.Add(cfg.MaxRuntime), after: cfg.MaxRuntime, grace: cfg.Grace, log: log,
			stop: func() { ch.group.signal(stopSignal) },
			kill: func() {
				ch.group.signal(syscall.SIGKILL)
				log.Warn("killed the child", "signal", "SIGKILL")
			},
		}
		g.Add(mr.run, mr.interrupt)
	}
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
	gone()

	exit := ch.exit()
	if exit.Signal != 0 {
		log.Info("child exited", "signal", exit.Signal.String(), "status", exit.Code)
	} else {
		log.Info("child exited", "status", exit.Code)
	}
	if err := lost.get(); err != nil {
		return err
	}
	if !ch.exitedAt.Before(l.Deadline()) {
		err := &LostError{Path: cfg.Path, Reason: "the child outlived the lease (was the process frozen?)"}
		log.Error("lease lost", "err", err)
		return err
	}
	if mr != nil && mr.fired.Load() {
		return &MaxRuntimeError{Path: cfg.Path, MaxRuntime: cfg.MaxRuntime, Exit: exit}
	}
	if exit.Code == 0 {
		return nil
	}
	return &exit
}

// prepare makes cmd the child: in a process group of its own, whose id is
// its pid, so that stopping it stops what it started (sh -c 'a | b'); killed
// when the process dies, where the platform can (setParentDeathSignal);
// with the lease in its environment.
func prepare(cmd *exec.Cmd, leasePath string, l *lease.Lease) {
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(slices.Clip(env),
		EnvLeasePath+"="+leasePath,
		EnvInstanceID+"="+l.InstanceID(),
		EnvEpoch+"="+strconv.FormatUint(l.Epoch(), 10))
	if slot := l.Record().Slot; slot != nil && slot.Epoch == l.Epoch() {
		cmd.Env = append(cmd.Env, EnvSlot+"="+slot.Start.UTC().Format(time.RFC3339Nano))
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	setParentDeathSignal(cmd.SysProcAttr)
}

// errChildExited ends the group when the child has exited and been reaped.
var errChildExited = errors.New("child exited")

// child is the command: the child actor. It runs in a process group of its
// own, and is started from a goroutine that stays locked to its OS thread
// until the child has been waited for, because the parent-death signal fires
// when the thread that started the child exits, not the process.
type child struct {
	cmd   *exec.Cmd
	group *procGroup

	job      *jobState     // its stops and continues
	done     chan struct{} // closed once the child has been reaped
	status   syscall.WaitStatus
	exitedAt time.Time // when its exit was noticed, before reaping
}

// startChild starts cmd. With a reaper (PID 1), the reaper waits for the
// child; otherwise the goroutine that started it does.
func startChild(cmd *exec.Cmd, r *reaper) (*child, error) {
	c := &child{cmd: cmd, job: newJobState(), done: make(chan struct{})}
	started := make(chan error, 1)
	go c.run(r, started)
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

func (c *child) run(r *reaper, started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	start := func() (int, error) {
		if err := c.cmd.Start(); err != nil {
			return 0, err
		}
		c.group = &procGroup{pgid: c.cmd.Process.Pid}
		return c.cmd.Process.Pid, nil
	}
	if r != nil {
		if err := r.startChild(start, c.exited, c.job); err != nil {
			started <- err
			return
		}
		started <- nil
		c.status = <-r.status
		c.cmd.Wait() // the reaper reaped it: this only closes what Start opened
	} else {
		if _, err := start(); err != nil {
			started <- err
			return
		}
		started <- nil
		if waitNoReap(c.cmd.Process.Pid, c.job) {
			c.exited()
		}
		c.cmd.Wait()
		c.exited()
		if ps := c.cmd.ProcessState; ps != nil {
			c.status, _ = ps.Sys().(syscall.WaitStatus)
		}
	}
	close(c.done)
}

// exited is called once the child has exited, before it is reaped where
// the platform can tell: it kills what the child left in its group.
func (c *child) exited() {
	if c.exitedAt.IsZero() {
		c.exitedAt = time.Now()
	}
	c.group.close()
}

// wait is the actor's execute: it returns once the child has been reaped.
func (c *child) wait() error {
	<-c.done
	return errChildExited
}

// interrupt kills the child and its group at once: the lease is lost.
func (c *child) interrupt(error) { c.group.signal(syscall.SIGKILL) }

// exit is the child's status, as a shell reports it.
func (c *child) exit() ExitError {
	if c.status.Signaled() {
		return ExitError{Code: 128 + int(c.status.Signal()), Signal: c.status.Signal()}
	}
	return ExitError{Code: c.status.ExitStatus()}
}

// procGroup is the child's process group. Signals go to it only until the
// child has been reaped: while the child is running or a zombie its pid,
// which is the group's id, cannot be reused.
type procGroup struct {
	mu     sync.Mutex
	pgid   int
	closed bool
}

// signal sends sig to the group, unless the child has been reaped.
func (g *procGroup) signal(sig os.Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		syscall.Kill(-g.pgid, sig.(syscall.Signal))
	}
}

// close kills whatever the child left running in its group, so nothing the
// command started outlives the lease, and stops further signals. It is
// called before the child is reaped where the platform allows.
func (g *procGroup) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		syscall.Kill(-g.pgid, syscall.SIGKILL)
		g.closed = true
	}
}

// hangUp sends the group SIGHUP, then SIGCONT, as the kernel does to a
// stopped process group that becomes orphaned.
func (g *procGroup) hangUp() {
	g.signal(syscall.SIGHUP)
	g.signal(syscall.SIGCONT)
}
