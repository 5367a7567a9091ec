//go:build unix

package supervisor

import (
	"bytes"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// catcher catches the signals Run forwards, on C.
//
// Catching or releasing a signal costs a round trip to the Go runtime's
// signal-mask thread, and on Linux Run forwards some 50 signals: doing that
// in line would add to every start and, worse, to every hand-off, as the
// release that lets a standby in would wait for it (the README's
// Performance section has the figures). So the signals that end a wait
// are caught before catchSignals returns and the rest in the background
// (ready is closed when all are: the child must not start before), and
// release lets them go in the background, after the lease is released.
type catcher struct {
	C     chan os.Signal
	ready chan struct{}  // closed once every signal is caught
	ttin  chan os.Signal // catches SIGTTIN, which is dropped

	done     chan struct{} // made by stop (a second stop sees it), closed by release
	watching chan struct{} // closed when stop's goroutine has returned
}

// catchSignals catches the signals Run forwards (SIGPIPE too if pipe is
// set), but not one that is ignored when it is called: that one stays
// ignored, in this process and in the child (see ignoredSignals).
func catchSignals(pipe bool) *catcher {
	c := &catcher{C: make(chan os.Signal, 64), ready: make(chan struct{}), ttin: make(chan os.Signal, 1)}
	ignored := ignoredSignals()
	var now, later []os.Signal
	for _, s := range forwardedSignals(pipe) {
		if ignored(s) {
			continue
		}
		if endsWait(s) {
			now = append(now, s)
		} else {
			later = append(later, s)
		}
	}
	signal.Notify(c.C, now...)
	go func() {
		defer close(c.ready)
		if len(later) > 0 { // none would mean all
			signal.Notify(c.C, later...)
		}
		// SIGTTIN, from a kill (the process never reads its terminal),
		// must not stop it: stopped, it would stop its guard and renewals
		// while the child ran on past the lease. Caught, not ignored:
		// children get back the default of a caught signal, but inherit an
		// ignored one, which the Go runtime could not restore after.
		// (SIGTTOU: see ignoreTTOU.)
		if !ignored(syscall.SIGTTIN) {
			signal.Notify(c.ttin, syscall.SIGTTIN)
		}
	}()
	return c
}

// wait returns once every forwarded signal is caught.
func (c *catcher) wait() { <-c.ready }

// stop ends the forwarding: what was caught and not forwarded so far is
// dropped (as signal.Stop would drop it). From then until release, a
// shutdown signal (TERM, INT, QUIT) has its default effect: it is let go
// and raised again, so that a TERM during a release hung in a stuck
// filesystem ends the process. Other signals are dropped: a HUP or USR1
// sent for the child as it exits must not turn its exit status into ours.
// The signals stay caught until release, so that letting them go does not
// compete with the release of the lease for the CPU. A second call does
// nothing.
func (c *catcher) stop() {
	if c.done != nil {
		return
	}
	drain(c.C, func(os.Signal) {})
	c.done = make(chan struct{})
	c.watching = make(chan struct{})
	go func() {
		defer close(c.watching)
		for {
			select {
			case sig := <-c.C:
				if isShutdown(sig) {
					dieBy(sig)
				}
			case <-c.done:
				return
			}
		}
	}()
}

// release stops catching, in the background (a program that exits right
// after does not wait for it); a shutdown signal caught meanwhile is raised
// again once the signals are let go. It follows stop.
func (c *catcher) release() {
	close(c.done)
	go func() {
		<-c.watching
		<-c.ready
		signal.Stop(c.ttin)
		signal.Stop(c.C)
		drain(c.C, func(sig os.Signal) {
			if isShutdown(sig) {
				dieBy(sig)
			}
		})
	}()
}

func drain(c <-chan os.Signal, f func(os.Signal)) {
	for {
		select {
		case s := <-c:
			f(s)
		default:
			return
		}
	}
}

// dieBy ends the process by sig's default effect. The kernel drops such a
// signal sent to the init of a PID namespace (leaserun as a container's
// entrypoint), and the Go runtime then exits 2: there, it exits 128+N, the
// status a shell gives a process that signal N killed.
func dieBy(sig os.Signal) {
	if os.Getpid() == 1 {
		os.Exit(128 + int(sig.(syscall.Signal)))
	}
	signal.Reset(sig)
	syscall.Kill(os.Getpid(), sig.(syscall.Signal))
}

// notForwarded reports the signals leaserun does not catch to pass on:
// SIGKILL and SIGSTOP, which can't be caught; job control from the
// terminal (see catchSignals and ignoreTTOU); SIGCHLD, which is about
// leaserun's own children; SIGPROF, which the Go runtime handles itself
// before a program can see it; SIGURG, which the Go runtime sends its own
// threads to preempt them, unless that is off (asyncPreemptOff); SIGPIPE
// unless pipe is set (see Config.ForwardSIGPIPE); and 32 to 34, which a Go
// program can't catch.
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
		// Only on Linux is the SIGPIPE of a failed write raised on the
		// thread that wrote, so that a thread that blocks SIGPIPE keeps its
		// own from the process (see Config.ForwardSIGPIPE); not so on
		// macOS.
		return !pipe || runtime.GOOS != "linux"
	}
	// A Go program can't catch 32 and 33, taken by the C library's threads,
	// nor 34, which the Go runtime keeps for musl's (and is glibc's
	// SIGRTMIN): 32 and 34 end the process as SIGKILL would.
	return s >= 32 && s <= 34
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

// isShutdown reports whether sig asks the child to shut down: after it, the
// child is killed if it hasn't exited within the grace period.
func isShutdown(sig os.Signal) bool {
	return sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT
}

// endsWait reports whether sig, received while waiting for the lease, ends
// the wait (exit 128+N).
func endsWait(sig os.Signal) bool { return isShutdown(sig) || sig == syscall.SIGHUP }

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

// ignoredMask is the process's ignored signals, bit N-1 for signal N, from
// /proc/self/status on Linux; 0 elsewhere, where there is no portable way
// to read a signal's disposition without changing it (signal.Ignored alone
// says).
func ignoredMask() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("\nSigIgn:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	mask, _ := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 64)
	return mask
}

// signalName names sig as kill -l does, with the SIG prefix.
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return name
		}
		return "signal " + strconv.Itoa(int(s))
	}
	return sig.String()
}

// forwarder is the actor that passes every signal leaserun catches on to
// the child's process group, once, while the lease holds; once it has
// expired, it SIGKILLs the group instead. After a shutdown signal (TERM, INT,
// QUIT), or when the context ends (then it sends the stop signal itself),
// it gives the child the grace period, then SIGKILLs the group.
type forwarder struct {
	*quit
	sigs       <-chan os.Signal
	ctxDone    <-chan struct{}
	group      *procGroup
	expired    func() bool // the lease's Expired
	stopSignal os.Signal
	grace      time.Duration
	log        *slog.Logger
}

func (f *forwarder) run() error {
	kill := time.NewTimer(time.Hour)
	kill.Stop()
	defer kill.Stop()
	shuttingDown := false
	shutdown := func() {
		if !shuttingDown {
			shuttingDown = true
			kill.Reset(f.grace)
		}
	}
	for {
		select {
		case <-f.c:
			return nil
		case sig := <-f.sigs:
			if f.expired() {
				// Woken after a freeze past the TTL (the SIGCONT that
				// thawed us, say): passing a signal on could resume a
				// stopped child that must not run again. The guard is
				// declaring the loss; make sure the child is dead first.
				f.group.signal(syscall.SIGKILL)
				continue
			}
			f.group.signal(sig)
			f.log.Debug("forwarded signal", "signal", signalName(sig))
			if isShutdown(sig) {
				if !shuttingDown {
					f.log.Info("stopping the child", "signal", signalName(sig), "grace", f.grace)
				}
				shutdown()
			}
		case <-f.ctxDone:
			f.ctxDone = nil
			f.group.signal(f.stopSignal)
			shutdown()
			f.log.Info("stopping the child: context done", "signal", signalName(f.stopSignal), "grace", f.grace)
		case <-kill.C:
			f.group.signal(syscall.SIGKILL)
			f.log.Warn("the child outlived the grace period: killed it", "grace", f.grace)
		}
	}
}
