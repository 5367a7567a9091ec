package supervisor

import (
	"errors"
	"log/slog"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// renewer is the actor that renews the lease every RenewInterval, and
// retries a failed renewal after a quarter of that. It returns a *LostError
// once the lease is lost. A renewal runs in a goroutine of its own, so that
// one hung in a stuck filesystem doesn't keep the actor from returning; the
// deadline guard, not the renewer, keeps the child from outliving the lease.
type renewer struct {
	*quit
	l            *lease.Lease
	renew        func() error
	every, retry time.Duration
	log          *slog.Logger
	stats        *Stats
}

func newRenewer(cfg *Config, l *lease.Lease, log *slog.Logger) *renewer {
	renew := l.Renew
	if cfg.hooks != nil && cfg.hooks.renew != nil {
		renew = func() error { return cfg.hooks.renew(l) }
	}
	return &renewer{quit: newQuit(), l: l, renew: renew,
		every: cfg.RenewInterval, retry: cfg.retryInterval(), log: log, stats: cfg.Stats}
}

func (r *renewer) run() error {
	// The deadline is the start of the last write plus the TTL.
	next := r.l.Deadline().Add(r.every - r.l.TTL())
	for {
		if !r.sleepUntil(next) {
			return nil
		}
		start := time.Now()
		res := make(chan error, 1)
		go func() { res <- r.renew() }()
		var err error
		select {
		case <-r.c:
			return nil
		case err = <-res:
		}
		r.stats.renewed(time.Since(start), err)
		switch {
		case err == nil && r.l.Expired():
			return r.lost("the lease lapsed while it was being renewed", nil)
		case err == nil:
			r.log.Debug("renewed", "epoch", r.l.Epoch(), "ttl_left", time.Until(r.l.Deadline()))
			next = start.Add(r.every)
		case errors.Is(err, lease.ErrLost), errors.Is(err, lease.ErrReleased):
			return r.lost("renewal failed", err)
		default:
			r.log.Warn("renew failed", "err", err, "retry_in", r.retry, "ttl_left", time.Until(r.l.Deadline()))
			next = time.Now().Add(r.retry)
		}
	}
}

// lost returns the loss; the caller kills the child first, then logs it.
func (r *renewer) lost(reason string, err error) error {
	return &LostError{Path: r.l.Path(), Reason: reason, Err: err}
}
