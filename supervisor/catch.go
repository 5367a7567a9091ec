//go:build unix

package supervisor

import (
	"os"
	"os/signal"
)

// catcher catches the signals Run forwards, on C.
//
// Catching or releasing a signal costs a round trip to the Go runtime's
// signal-mask thread (two thread switches, some 20-30µs each); on Linux Run
// forwards some 50 signals, so doing that in line would add over a millisecond
// to every start and, worse, to every hand-off: the release that lets a
// standby in would wait for it. So the signals that end a wait are caught
// before catchSignals returns and the rest in the background (ready is
// closed when all are: the child must not start before), and release lets
// them go in the background, after the lease is released.
type catcher struct {
	C     chan os.Signal
	ready chan struct{}  // closed once every signal is caught
	held  chan os.Signal // what catches the signals held off (heldOff), dropped

	done     chan struct{} // closed by release
	watching chan struct{} // closed when stop's goroutine has returned
}

// catchSignals catches the signals Run forwards (SIGPIPE too if pipe is
// set), but not one that is ignored when it is called: that one stays
// ignored, in this process and in the child (see ignoredSignals).
func catchSignals(pipe bool) *catcher {
	c := &catcher{C: make(chan os.Signal, 64), ready: make(chan struct{}), held: make(chan os.Signal, 1)}
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
		var held []os.Signal
		for _, s := range heldOff() {
			if !ignored(s) {
				held = append(held, s)
			}
		}
		if len(held) > 0 { // none would mean all
			signal.Notify(c.held, held...)
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
// compete with the release of the lease for the CPU.
func (c *catcher) stop() {
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
		signal.Stop(c.held)
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
		os.Exit(signalStatus(sig))
	}
	signal.Reset(sig)
	raise(sig)
}

// raise sends sig to this process.
func raise(sig os.Signal) {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Signal(sig)
	}
}
