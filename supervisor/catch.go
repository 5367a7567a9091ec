package supervisor

import (
	"os"
	"os/signal"
)

// catcher catches the signals Run forwards, on C.
//
// Catching or releasing a signal costs a round trip to the Go runtime's
// signal-mask thread (two thread switches, some 20-30µs each); on Linux Run
// forwards 47 signals, so doing that in line would add over a millisecond
// to every start and, worse, to every hand-off: the release that lets a
// standby in would wait for it. So the signals that end a wait are caught
// before catchSignals returns and the rest in the background (ready is
// closed when all are: the child must not start before), and stop releases
// them in the background.
type catcher struct {
	C     chan os.Signal
	ready chan struct{}
}

func catchSignals() *catcher {
	c := &catcher{C: make(chan os.Signal, 64), ready: make(chan struct{})}
	var now, later []os.Signal
	for _, s := range forwardedSignals() {
		if endsWait(s) {
			now = append(now, s)
		} else {
			later = append(later, s)
		}
	}
	signal.Notify(c.C, now...)
	go func() {
		defer close(c.ready)
		signal.Notify(c.C, later...)
	}()
	return c
}

// wait returns once every forwarded signal is caught.
func (c *catcher) wait() { <-c.ready }

// stop stops catching as if at once, without waiting for it: what was
// caught and not forwarded so far is dropped (as signal.Stop would drop
// it), and a shutdown signal (TERM, INT, QUIT) caught after stop is raised
// again once the signals are released, so that it has its default effect (a
// TERM during a release hung in a stuck filesystem ends the process). Other
// signals are dropped: a HUP or USR1 sent for the child as it exits must not
// turn its exit status into ours.
func (c *catcher) stop() {
	drain(c.C, func(os.Signal) {})
	go func() {
		<-c.ready
		signal.Stop(c.C)
		drain(c.C, func(sig os.Signal) {
			if isShutdown(sig) {
				raise(sig)
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

// raise sends sig to this process.
func raise(sig os.Signal) {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Signal(sig)
	}
}
