package supervisor

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// maxRuntime is the actor that stops the child once it has run for
// Config.MaxRuntime, as the deadline guard stops a child whose lease can no
// longer be kept: at the instant at it calls stop (the stop signal to the
// child's group, or cancelling Do's function), and grace later, if the
// child is still there, kill (SIGKILL to the group). It never ends the
// group itself: the child's exit does, and Run then reports a
// *MaxRuntimeError because fired is set.
type maxRuntime struct {
	*quit
	at           time.Time // the child's start plus after
	after, grace time.Duration
	stop         func()
	kill         func() // nil: nothing to kill (Do)
	log          *slog.Logger
	fired        atomic.Bool
}

func (m *maxRuntime) run() error {
	if !m.sleepUntil(m.at) {
		return nil
	}
	m.fired.Store(true)
	m.stop()
	// The log may block (a stderr nobody reads): it must not hold up the
	// kill below.
	go m.log.Warn("maximum runtime reached: stopping the child", "max_runtime", m.after, "grace", m.grace)
	if m.kill != nil && m.sleepUntil(time.Now().Add(m.grace)) {
		m.kill()
	}
	<-m.c
	return nil
}
