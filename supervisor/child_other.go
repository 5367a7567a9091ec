//go:build unix && !linux

package supervisor

import "syscall"

// setParentDeathSignal does nothing: only Linux has a parent-death signal.
// Elsewhere a child outlives a leaserun killed with SIGKILL.
func setParentDeathSignal(*syscall.SysProcAttr) {}

// waitNoReap can't wait without reaping here: the caller reaps first, and
// kills what the child left in its group just after, with a tiny window in
// which the group's id could in theory be reused. Nor does it see the
// child's stops.
func waitNoReap(int, *jobState) bool { return false }

// becomeSubreaper reports false: only Linux has child subreapers.
func becomeSubreaper() bool { return false }

func killOrphans() {}

// reaper stands in for Linux's, which reaps orphans as PID 1: only there
// does Run do that (containers are Linux), and newReaper returns none.
type reaper struct {
	*quit
	status chan syscall.WaitStatus
}

func newReaper(bool) *reaper { return nil }

func (r *reaper) close() {}

func (r *reaper) startChild(start func() (int, error), _ func(), _ *jobState) error {
	_, err := start()
	return err
}

func (r *reaper) run() error { return nil }
