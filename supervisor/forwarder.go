package supervisor

import (
	"log/slog"
	"os"
	"syscall"
	"time"
)

// forwarder is the actor that passes every signal leaserun catches on to
// the child's process group, once. After a shutdown signal (TERM, INT,
// QUIT), or when the context ends (then it sends the stop signal itself),
// it gives the child the grace period, then SIGKILLs the group.
type forwarder struct {
	*quit
	sigs       <-chan os.Signal
	ctxDone    <-chan struct{}
	group      *procGroup
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
			f.log.Debug("forwarding signal", "signal", signalName(sig))
			f.group.signal(sig)
			if isShutdown(sig) {
				if !shuttingDown {
					f.log.Info("stopping the child", "signal", signalName(sig), "grace", f.grace)
				}
				shutdown()
			}
		case <-f.ctxDone:
			f.ctxDone = nil
			f.log.Info("stopping the child: context done", "signal", signalName(f.stopSignal), "grace", f.grace)
			f.group.signal(f.stopSignal)
			shutdown()
		case <-kill.C:
			f.log.Warn("the child outlived the grace period: killing it", "grace", f.grace)
			f.group.signal(syscall.SIGKILL)
		}
	}
}
