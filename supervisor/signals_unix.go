//go:build unix

package supervisor

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// notForwarded reports the signals leaserun does not catch to pass on:
// SIGKILL and SIGSTOP, which can't be caught; job control from the
// terminal (see heldOff and ignoreTTOU); SIGCHLD, which is about leaserun's
// own children; SIGPROF, which the Go runtime handles itself before a
// program can see it; SIGURG, which the Go runtime sends its own threads to
// preempt them, unless that is off (asyncPreemptOff); SIGPIPE unless pipe
// is set (see Config.ForwardSIGPIPE); and those reserved (reservedSignal).
//
// The signals the kernel raises for a fault (SIGSEGV, SIGBUS, SIGFPE,
// SIGILL, SIGTRAP, SIGSYS, SIGABRT) are forwarded when sent with kill: the
// Go runtime hands those to a program that asked for them, and still
// crashes on a real fault.
func notForwarded(s syscall.Signal, pipe bool) bool {
	switch s {
	case syscall.SIGKILL, syscall.SIGSTOP,
		syscall.SIGTTIN, syscall.SIGTTOU,
		syscall.SIGCHLD, syscall.SIGPROF:
		return true
	case syscall.SIGURG:
		return !asyncPreemptOff()
	case syscall.SIGPIPE:
		return !pipe || !pipeForwardable
	}
	return reservedSignal(s)
}

// forwardedSignals are the signals leaserun catches and passes on to the
// child's process group: every catchable one but those above, SIGPIPE too
// if pipe is set. Among them SIGTSTP: stopping leaserun would stop the
// renewals, not the child.
func forwardedSignals(pipe bool) []os.Signal {
	var sigs []os.Signal
	for s := syscall.Signal(1); s <= maxSignal(); s++ {
		if !notForwarded(s, pipe) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// asyncPreemptOff reports whether the Go runtime's asynchronous preemption
// is off in this process by GODEBUG=asyncpreemptoff=1 in its environment
// (the last setting wins, as in the runtime). Only then is every SIGURG the
// process gets one sent to it: otherwise the runtime signals its own threads
// with SIGURG, and os/signal can't tell those from one sent with kill.
func asyncPreemptOff() bool {
	off := false
	for _, kv := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == "asyncpreemptoff" {
			if n, err := strconv.Atoi(v); err == nil {
				off = n != 0
			}
		}
	}
	return off
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

// ignoredSignals reports, for each signal, whether it is ignored now, as
// inherited from whoever started the process (nohup ignores SIGHUP; a
// script's background job SIGINT and SIGQUIT). Run leaves such a signal
// ignored: caught, it would reach the child at its default, since exec
// resets a caught signal but keeps an ignored one.
//
// The Go runtime installs its own handler for most signals before any of
// the program's code runs, keeping an inherited SIG_IGN only for SIGHUP
// and SIGINT (which signal.Ignored reports) and leaving alone SIGCONT,
// SIGTSTP, SIGTTIN and SIGTTOU, which it does not catch (found in the
// process's SigIgn on Linux). Whether any other signal was ignored at the
// start can't be known.
func ignoredSignals() func(os.Signal) bool {
	mask := ignoredMask()
	return func(sig os.Signal) bool {
		s, ok := sig.(syscall.Signal)
		if !ok {
			return false
		}
		return signal.Ignored(sig) || s >= 1 && s <= 64 && mask&(1<<(s-1)) != 0
	}
}
