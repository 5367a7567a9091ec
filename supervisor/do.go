package supervisor

import (
	"context"
	"errors"
	"time"

	"github.com/oklog/run"
)

// Do calls fn while holding the lease cfg describes: it takes the lease (or
// with cfg.Wait stands by for it), renews it while fn runs, and releases it
// when fn returns.
//
// fn's context is cancelled when the lease is lost (a renewal says so, or it
// expired) and at the stop point, Deadline - Grace - Margin, when renewals
// keep failing; context.Cause then says why. fn must return promptly after
// that: a function can't be killed, and from the lease's deadline on another
// holder may take over. Do waits for fn, and then returns a *LostError
// (errors.Is(err, lease.ErrLost)) joined with fn's error, if any other than
// the cancellation. Otherwise it returns fn's error.
//
// With cfg.MaxRuntime, fn's context is cancelled, its cause a
// *MaxRuntimeError, once fn has run that long; Do waits for fn and returns
// that error (joined with fn's, if any other than the cancellation).
//
// Errors from validating cfg and taking the lease are Run's (with
// cfg.OncePer, one wrapping lease.ErrDone when the slot has had its run).
// A failed release is logged, not returned: the lease then lapses within
// its TTL.
func Do(ctx context.Context, cfg Config, fn func(ctx context.Context) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.resolveStore()
	log := cfg.logger().With("lease", cfg.Path)
	l, err := acquire(ctx, &cfg)
	if err != nil {
		return err
	}
	log.Info("acquired", "instance", l.InstanceID(), "epoch", l.Epoch(), "ttl", cfg.TTL)
	var result error
	defer func() { release(l, log, slotStatus(&cfg, result)) }()

	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		lost  outcome
		fnErr error
		g     run.Group
	)
	g.Add(func() error {
		fnErr = fn(fctx)
		return nil
	}, func(err error) {
		if lostErr := (*LostError)(nil); errors.As(err, &lostErr) {
			cancel(lostErr)
		}
	})
	rn := newRenewer(&cfg, l, log)
	g.Add(rn.run, rn.interrupt)
	gd := &guard{quit: newQuit(), l: l, grace: cfg.Grace, margin: cfg.Margin, log: log,
		stop: func(err *LostError) { lost.set(err); cancel(err) }}
	g.Add(gd.run, gd.interrupt)
	var mr *maxRuntime
	timeout := &MaxRuntimeError{Path: cfg.Path, MaxRuntime: cfg.MaxRuntime}
	if cfg.MaxRuntime > 0 {
		mr = &maxRuntime{quit: newQuit(), at: time.Now().Add(cfg.MaxRuntime), after: cfg.MaxRuntime, grace: cfg.Grace, log: log,
			stop: func() { cancel(timeout) }}
		g.Add(mr.run, mr.interrupt)
	}
	var lostErr *LostError
	if errors.As(g.Run(), &lostErr) {
		if lost.get() == nil {
			log.Error("lease lost", "err", lostErr)
		}
		lost.set(lostErr)
	}
	if err := lost.get(); err == nil && l.Expired() {
		lost.set(&LostError{Path: l.Path(), Reason: "the function outlived the lease"})
		log.Error("lease lost", "err", lost.get())
	}
	if err := lost.get(); err != nil {
		result = err
	} else if mr != nil && mr.fired.Load() {
		result = timeout
	}
	if result != nil {
		if fnErr != nil && !(errors.Is(fnErr, context.Canceled) && ctx.Err() == nil) {
			result = errors.Join(result, fnErr)
		}
		return result
	}
	result = fnErr
	return fnErr
}
