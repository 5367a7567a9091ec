//go:build unix

package supervisor

import (
	"log/slog"
	"os"
	"syscall"
	"time"
)

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
