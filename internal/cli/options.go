package cli

import (
	"log/slog"

	"github.com/leaserun/leaserun/supervisor"
)

// An Option is something an executable links beside leaserun's own: a
// store of leases (WithScheme), the health server (WithHealth). What it
// does not link, it hands to the executable that does.
type Option func(*links)

// links is what an executable links, and its command line.
type links struct {
	schemes []Scheme
	health  listenHealth
}

// scheme returns the linked store of scheme, if any.
func (l *links) scheme(name string) (Scheme, bool) {
	for _, s := range l.schemes {
		if s.Name == name {
			return s, true
		}
	}
	return Scheme{}, false
}

// WithScheme links the store s: --lease URLs of its scheme are served here
// instead of being handed to the executable that serves them.
func WithScheme(s Scheme) Option {
	return func(l *links) { l.schemes = append(l.schemes, s) }
}

// WithHealth links the health server that listen starts (health.Listen):
// a run with --health-addr is served here instead of being handed to
// leaserun-http.
func WithHealth[S HealthServer](listen func(addr string, stats *supervisor.Stats, log *slog.Logger) (S, error)) Option {
	return func(l *links) {
		l.health = func(addr string, stats *supervisor.Stats, log *slog.Logger) (HealthServer, error) {
			s, err := listen(addr, stats, log)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
	}
}
