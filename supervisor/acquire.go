package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// acquire takes the lease, or with cfg.Wait stands by for it. A signal on
// sigs that ends a wait (TERM, INT, HUP, QUIT) ends the acquisition at once,
// with status 128+N, even while a read or write of the lease hangs in a
// stuck filesystem: the lease is then given back by whoever finishes it.
// Other signals that arrive before the child exists are dropped. Errors
// carry their exit status.
func acquire(ctx context.Context, cfg *Config, sigs <-chan os.Signal) (*lease.Lease, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.WaitTimeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, cfg.WaitTimeout)
		defer cancelTimeout()
	}
	type result struct {
		l   *lease.Lease
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		if cfg.Wait {
			r.l, r.err = wait(ctx, cfg)
		} else {
			r.l, r.err = lease.Acquire(cfg.Path, cfg.TTL, cfg.leaseOptions()...)
		}
		done <- r
	}()
	for {
		select {
		case r := <-done:
			if r.err != nil && cfg.WaitTimeout > 0 && errors.Is(r.err, context.DeadlineExceeded) {
				return nil, &ExitError{Code: ExitHeld,
					Err: fmt.Errorf("gave up after --wait-timeout %v: %w", cfg.WaitTimeout, r.err)}
			}
			return r.l, acquireError(cfg, r.err)
		case sig := <-sigs:
			if !endsWait(sig) {
				continue
			}
			err := fmt.Errorf("%w by %v while taking the lease %s", ErrInterrupted, signalName(sig), cfg.Path)
			cancel(err)
			go func() {
				if r := <-done; r.l != nil {
					r.l.Release()
				}
			}()
			return nil, &ExitError{Code: signalStatus(sig), Err: err}
		}
	}
}

// wait stands by for the lease, saying who holds it.
func wait(ctx context.Context, cfg *Config) (*lease.Lease, error) {
	if st, err := lease.Read(cfg.Path, cfg.LeaseOptions...); err == nil && st.State == lease.StateHeld {
		r := st.Record
		cfg.Logger.Info("waiting for the lease", "lease", cfg.Path, "holder", r.InstanceID,
			"holder_pid", r.PID, "holder_host", r.Host, "expires_at", r.ExpiresAt().Format(time.RFC3339Nano))
	} else {
		cfg.Logger.Debug("waiting for the lease", "lease", cfg.Path)
	}
	return lease.Wait(ctx, cfg.Path, cfg.TTL, cfg.leaseOptions()...)
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

// release gives the lease up, and logs what became of it. It may hang in a
// stuck filesystem: that only delays the exit, as the child is dead by
// then.
func release(l *lease.Lease, log *slog.Logger) {
	switch err := l.Release(); {
	case err == nil:
		log.Info("released")
	case errors.Is(err, lease.ErrLost):
		log.Debug("not released: another instance took the lease over", "err", err)
	default:
		// Standbys take the lease once its last record expires.
		rec := l.Record()
		log.Warn("not released: the lease stays held until it expires",
			"expires_at", rec.ExpiresAt().Format(time.RFC3339Nano), "err", err)
	}
}
