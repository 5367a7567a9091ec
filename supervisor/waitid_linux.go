package supervisor

import "golang.org/x/sys/unix"

// si_code of a SIGCHLD (and of waitid's report).
const (
	cldStopped   = 5 // CLD_STOPPED
	cldContinued = 6 // CLD_CONTINUED
)

// waitNoReap blocks until the process pid has exited, leaving it a zombie:
// its pid, and so its process group's id, stays reserved until it is reaped.
// Meanwhile it tells job of each stop and continue of pid. It reports
// whether it could wait: if not, the caller must reap first.
func waitNoReap(pid int, job *jobState) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WSTOPPED|unix.WCONTINUED|unix.WNOWAIT, nil)
		switch {
		case err == unix.EINTR:
		case err != nil:
			return false
		case info.Code == cldStopped || info.Code == cldContinued:
			jobChanges(pid, job)
		default:
			return true
		}
	}
}

// jobChanges tells job of the stops and continues of the child pid not yet
// reported, and consumes their reports (not its exit's).
func jobChanges(pid int, job *jobState) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED|unix.WCONTINUED|unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
		case err != nil || info.Signo == 0:
			return
		case info.Code == cldStopped:
			job.set(true)
		case info.Code == cldContinued:
			job.set(false)
		default:
			return
		}
	}
}

// isZombie reports whether the child pid has exited and is waiting to be
// reaped, without reaping it.
func isZombie(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
	return err == nil && info.Signo != 0
}
