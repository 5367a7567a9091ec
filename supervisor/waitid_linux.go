package supervisor

import "golang.org/x/sys/unix"

// waitNoReap blocks until the process pid has exited, leaving it a zombie:
// its pid, and so its process group's id, stays reserved until it is reaped.
// It reports whether it could: if not, the caller must reap first.
func waitNoReap(pid int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err == nil
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
