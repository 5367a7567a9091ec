//go:build unix

package supervisor

import (
	"log/slog"
	"sync"
	"time"
)

// jobState is the child's job-control state as its waiter last saw it:
// stopped or running. The waiter tells of each stop and continue where the
// platform can (Linux).
type jobState struct {
	mu      sync.Mutex
	stopped bool
	stops   int           // how many stops were seen
	changed chan struct{} // signalled on each change
}

func newJobState() *jobState { return &jobState{changed: make(chan struct{}, 1)} }

// set records that the child stopped, or continued.
func (j *jobState) set(stopped bool) {
	j.mu.Lock()
	j.stopped = stopped
	if stopped {
		j.stops++
	}
	j.mu.Unlock()
	select {
	case j.changed <- struct{}{}:
	default:
	}
}

func (j *jobState) get() (stopped bool, stops int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stopped, j.stops
}

// orphanCheckEvery is how often hangup looks again, while the child is
// stopped, whether leaserun's process group has been orphaned.
const orphanCheckEvery = 200 * time.Millisecond

// hangup is the actor that does for a stopped child what the kernel does
// for a stopped process group that becomes orphaned (POSIX: none of its
// members has a parent in another group of the same session, so no shell
// is left whose job control could continue it): it sends the group SIGHUP,
// then SIGCONT. The kernel can't see that case for the child's group:
// leaserun, its parent, sits in another group of the same session. So
// hangup watches leaserun's own group instead, which is the job of the
// shell that started leaserun: when it becomes orphaned while the child is
// stopped (after Ctrl-Z, the shell was killed, or its terminal closed),
// nothing but leaserun can continue the child, which would otherwise hold
// the lease, stopped, for as long as leaserun renews it.
//
// A child that was stopped when leaserun's group was orphaned already (a
// SIGSTOP under a service manager: a deliberate pause) is left stopped, as
// the kernel leaves it: SIGCONT, sent to leaserun or to the child, resumes
// it. (Whether the group was orphaned at the stop is judged when leaserun
// notices the stop, a moment after it.)
type hangup struct {
	*quit
	job      *jobState
	group    *procGroup
	orphaned func() bool // whether leaserun's process group is orphaned
	log      *slog.Logger
}

func (h *hangup) run() error {
	var tick <-chan time.Time
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	seen, orphanedAtStop, done := 0, false, 0
	for {
		select {
		case <-h.c:
			return nil
		case <-h.job.changed:
		case <-tick:
		}
		stopped, stops := h.job.get()
		if !stopped || stops == done {
			if ticker != nil {
				ticker.Stop()
				ticker, tick = nil, nil
			}
			continue
		}
		orphaned := h.orphaned()
		if stops != seen {
			seen, orphanedAtStop = stops, orphaned
			h.log.Debug("child stopped", "orphaned", orphaned)
		}
		if orphaned && !orphanedAtStop {
			h.log.Warn("the child is stopped and its job control is gone: hanging it up", "signal", "SIGHUP")
			h.group.hangUp()
			done = stops
			continue
		}
		if ticker == nil {
			ticker = time.NewTicker(orphanCheckEvery)
			tick = ticker.C
		}
	}
}
