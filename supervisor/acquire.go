package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// acquire takes the lease, or with cfg.Wait stands by for it, for
// cfg.WaitTimeout at most. Its errors are those of lease.AcquireStore and
// lease.WaitStore, an I/O error as an *IOError. cfg.Store is set.
func acquire(ctx context.Context, cfg *Config) (*lease.Lease, error) {
	if !cfg.Wait {
		l, err := lease.AcquireStore(cfg.Store, cfg.TTL, cfg.leaseOptions()...)
		return l, acquireError(cfg, err)
	}
	if cfg.WaitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.WaitTimeout)
		defer cancel()
	}
	log := cfg.logger()
	if st, err := lease.ReadStore(ctx, cfg.Store, cfg.LeaseOptions...); err == nil && st.State == lease.StateHeld {
		r := st.Record
		log.Info("waiting for the lease", "lease", cfg.Path, "holder", r.InstanceID,
			"holder_pid", r.PID, "holder_host", r.Host, "expires_at", r.ExpiresAt().Format(time.RFC3339Nano))
	} else {
		log.Debug("waiting for the lease", "lease", cfg.Path)
	}
	l, err := lease.WaitStore(ctx, cfg.Store, cfg.TTL, cfg.leaseOptions()...)
	return l, acquireError(cfg, err)
}

// acquireError makes an *IOError of an error that is not about the lease
// being held, or a setting.
func acquireError(cfg *Config, err error) error {
	if err == nil || errors.Is(err, lease.ErrHeld) || errors.Is(err, lease.ErrInvalid) {
		return err
	}
	return &IOError{Path: cfg.Path, Err: err}
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
