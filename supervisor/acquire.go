package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// acquire takes the lease, or with cfg.Wait stands by for it. A signal on
// sigs that ends a wait (TERM, INT, HUP, QUIT) ends it at once, with status
// 128+N. Errors carry their exit status.
func acquire(ctx context.Context, cfg *Config, sigs <-chan os.Signal) (*lease.Lease, error) {
	if !cfg.Wait {
		l, err := lease.Acquire(cfg.Path, cfg.TTL, cfg.leaseOptions()...)
		return l, acquireError(cfg, err)
	}
	if st, err := lease.Read(cfg.Path, cfg.LeaseOptions...); err == nil && st.State == lease.StateHeld {
		r := st.Record
		cfg.Logger.Info("waiting for the lease", "lease", cfg.Path, "holder", r.InstanceID,
			"holder_pid", r.PID, "holder_host", r.Host, "expires_at", r.ExpiresAt().Format(time.RFC3339Nano))
	} else {
		cfg.Logger.Debug("waiting for the lease", "lease", cfg.Path)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.WaitTimeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, cfg.WaitTimeout)
		defer cancelTimeout()
	}
	interrupted := watchWaitSignals(sigs, cancel)
	l, err := lease.Wait(ctx, cfg.Path, cfg.TTL, cfg.leaseOptions()...)
	if sig := interrupted(); sig != nil {
		if l != nil {
			l.Release()
		}
		return nil, &ExitError{Code: signalStatus(sig),
			Err: fmt.Errorf("%w by %v while waiting for the lease %s", ErrInterrupted, signalName(sig), cfg.Path)}
	}
	if err != nil && cfg.WaitTimeout > 0 && errors.Is(err, context.DeadlineExceeded) {
		return nil, &ExitError{Code: ExitHeld,
			Err: fmt.Errorf("gave up after --wait-timeout %v: %w", cfg.WaitTimeout, err)}
	}
	return l, acquireError(cfg, err)
}

// watchWaitSignals cancels the wait when a signal that ends it arrives. The
// function it returns stops watching and returns that signal, if any: it
// ends the run even if the lease was taken in the meantime.
func watchWaitSignals(sigs <-chan os.Signal, cancel context.CancelCauseFunc) func() os.Signal {
	if sigs == nil {
		return func() os.Signal { return nil }
	}
	done := make(chan struct{})
	var (
		wg  sync.WaitGroup
		got os.Signal
	)
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case sig := <-sigs:
				if endsWait(sig) {
					got = sig
					cancel(fmt.Errorf("%w by %v", ErrInterrupted, signalName(sig)))
					return
				}
			}
		}
	})
	return func() os.Signal {
		close(done)
		wg.Wait()
		return got
	}
}

// acquireError gives an error of Acquire or Wait its exit status.
func acquireError(cfg *Config, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lease.ErrHeld):
		return &ExitError{Code: ExitHeld, Err: err}
	case errors.Is(err, lease.ErrInvalid):
		return &ExitError{Code: ExitUsage, Err: err}
	default:
		return &ExitError{Code: ExitIO, Err: fmt.Errorf("lease %s: %w", cfg.Path, err)}
	}
}

// release gives the lease up. It may hang in a stuck filesystem: that only
// delays the exit, as the child is dead by then.
func release(l *lease.Lease, log *slog.Logger) {
	if err := l.Release(); err != nil {
		if errors.Is(err, lease.ErrLost) {
			log.Debug("not released: another instance holds the lease", "err", err)
		} else {
			log.Warn("release failed", "err", err)
		}
		return
	}
	log.Info("released")
}
