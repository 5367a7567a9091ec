//go:build unix && !linux

package supervisor

import "syscall"

// reaper: only Linux leaserun reaps orphans as PID 1 (containers are Linux).
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
