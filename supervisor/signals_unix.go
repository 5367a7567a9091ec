//go:build unix

package supervisor

import (
	"os"
	"syscall"
)

// notForwarded reports the signals leaserun does not catch to pass on:
// those it can't catch, those the kernel raises for a fault of leaserun's
// own (tini's list), job control from the terminal, SIGPIPE (a write of
// leaserun's own to a closed pipe), and those the Go runtime uses (SIGCHLD
// for the reaper, SIGURG for preemption, SIGPROF for profiling).
func notForwarded(s syscall.Signal) bool {
	switch s {
	case syscall.SIGKILL, syscall.SIGSTOP,
		syscall.SIGFPE, syscall.SIGILL, syscall.SIGSEGV, syscall.SIGBUS,
		syscall.SIGABRT, syscall.SIGTRAP, syscall.SIGSYS,
		syscall.SIGTTIN, syscall.SIGTTOU,
		syscall.SIGPIPE, syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPROF:
		return true
	}
	return reservedSignal(s)
}

// forwardedSignals are the signals leaserun catches and passes on to the
// child's process group: every catchable one but those above. Among them
// SIGTSTP: stopping leaserun would stop the renewals, not the child.
func forwardedSignals() []os.Signal {
	var sigs []os.Signal
	for s := syscall.Signal(1); s <= maxSignal; s++ {
		if !notForwarded(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// heldOff are the signals leaserun catches and drops, so that they can't
// stop it: SIGTTIN, from a kill (leaserun never reads its terminal).
// Stopped, leaserun would stop its guard and renewals while the child ran on
// past the lease. Caught, not ignored: children get back the default of a
// caught signal, but inherit an ignored one, which the Go runtime could not
// restore after. (SIGTTOU: see ignoreTTOU.)
func heldOff() []os.Signal { return []os.Signal{syscall.SIGTTIN} }

// isShutdown reports whether sig asks the child to shut down: after it, the
// child is killed if it hasn't exited within the grace period.
func isShutdown(sig os.Signal) bool {
	return sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT
}

// endsWait reports whether sig, received while waiting for the lease, ends
// the wait (exit 128+N).
func endsWait(sig os.Signal) bool { return isShutdown(sig) || sig == syscall.SIGHUP }

// signalStatus is the exit status for a signal N: 128+N.
func signalStatus(sig os.Signal) int {
	s, _ := sig.(syscall.Signal)
	return 128 + int(s)
}
