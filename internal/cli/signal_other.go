//go:build !unix

package cli

import "syscall"

// signalNum is the signal named name, with its SIG prefix, or 0: here,
// where no command runs under a lease, only the names of the signals a
// stop signal could be.
func signalNum(name string) syscall.Signal {
	return map[string]syscall.Signal{"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT,
		"SIGQUIT": syscall.SIGQUIT, "SIGKILL": syscall.SIGKILL, "SIGTERM": syscall.SIGTERM}[name]
}
