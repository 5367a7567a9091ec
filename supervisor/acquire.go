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
// sigs that ends a wait (TERM, INT, HUP, QUIT) ends the acquisition with
// status 128+N, once the lease it may still take has been given back (see
// giveBack): at once for a standby between two looks at the lease, later
// when a read or write of the lease is in a slow file server's hands. Other
// signals that arrive before the child exists are dropped. Errors carry
// their exit status.
func acquire(ctx context.Context, cfg *Config, sigs <-chan os.Signal) (*lease.Lease, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.WaitTimeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, cfg.WaitTimeout)
		defer cancelTimeout()
	}
	done := make(chan acquisition, 1)
	go func() {
		var r acquisition
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
			giveBack(cfg, done, sigs)
			return nil, &ExitError{Code: signalStatus(sig), Err: err}
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
	log := cfg.Logger.With("lease", cfg.Path)
	log.Debug("giving back the lease being taken, if any, before exiting", "within", cfg.TTL)
	given := make(chan struct{})
	go func() {
		defer close(given)
		if r := <-done; r.l != nil {
			release(r.l, log)
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
