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
	l, err := acquireOrWait(ctx, cfg)
	if err == nil {
		cfg.Stats.acquired(l, cfg.Grace+cfg.Margin)
	}
	return l, err
}

func acquireOrWait(ctx context.Context, cfg *Config) (*lease.Lease, error) {
	if !cfg.Wait {
		l, err := lease.AcquireStore(cfg.Store, cfg.TTL, cfg.leaseOptions()...)
		return l, acquireError(cfg, err)
	}
	cfg.Stats.setWaiting(true)
	defer cfg.Stats.setWaiting(false)
	if cfg.WaitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.WaitTimeout)
		defer cancel()
	}
	log := cfg.logger()
	if st, err := lease.ReadStore(ctx, cfg.Store, cfg.LeaseOptions...); err == nil && st.State == lease.StateHeld && !slotDone(cfg, st.Record) {
		r := st.Record
		log.Info("waiting for the lease", "lease", cfg.Path, "holder", r.InstanceID,
			"holder_pid", r.PID, "holder_host", r.Host, "expires_at", r.ExpiresAt().Format(time.RFC3339Nano))
	} else {
		log.Debug("waiting for the lease", "lease", cfg.Path)
	}
	l, err := lease.WaitStore(ctx, cfg.Store, cfg.TTL, cfg.leaseOptions()...)
	return l, acquireError(cfg, err)
}

// slotDone reports whether rec says that the current slot of cfg.OncePer
// has had its run: then the wait ends at once, and is not logged.
func slotDone(cfg *Config, rec *lease.Record) bool {
	return cfg.OncePer > 0 && rec.Slot != nil && rec.Slot.End().After(lease.SlotOf(time.Now(), cfg.OncePer))
}

// acquireError makes an *IOError of an error that is not about the lease
// being held, its slot having had its run, or a setting.
func acquireError(cfg *Config, err error) error {
	if err == nil || errors.Is(err, lease.ErrHeld) || errors.Is(err, lease.ErrDone) || errors.Is(err, lease.ErrInvalid) {
		return err
	}
	return &IOError{Path: cfg.Path, Err: err}
}

// release gives the lease up, and logs what became of it. It may hang in a
// stuck filesystem: that only delays the exit, as the child is dead by
// then. A status that is not nil is the run's exit status, recorded in
// the lease's slot (Config.OncePer).
func release(l *lease.Lease, log *slog.Logger, status *int) {
	var err error
	if status != nil {
		err = l.ReleaseWithStatus(*status)
	} else {
		err = l.Release()
	}
	switch {
	case err == nil && status != nil && l.Record().Slot != nil && l.Record().Slot.Epoch == l.Epoch():
		log.Info("released", "slot", l.Record().Slot.Start.Format(time.RFC3339Nano), "exit_status", *status)
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

// slotStatus is the exit status a run that ended with err records in the
// lease's slot (Config.OncePer): nil without slots, or when the lease was
// lost (no release can record it).
func slotStatus(cfg *Config, err error) *int {
	if cfg.OncePer <= 0 || errors.Is(err, lease.ErrLost) {
		return nil
	}
	code := 0
	var exit *ExitError
	var timeout *MaxRuntimeError
	switch {
	case err == nil:
	case errors.As(err, &timeout):
		code = exitMaxRuntime
	case errors.As(err, &exit):
		code = exit.Code
	case errors.Is(err, ErrCannotExec):
		code = 126
	default:
		code = 1
	}
	return &code
}
