package supervisor

import (
	"sync"
	"time"
)

// quit is an actor's interrupt: closed once.
type quit struct {
	once sync.Once
	c    chan struct{}
}

func newQuit() *quit { return &quit{c: make(chan struct{})} }

// interrupt is the actor's interrupt function for run.Group.
func (q *quit) interrupt(error) { q.once.Do(func() { close(q.c) }) }

// sleepUntil waits until t, and reports false if interrupted first.
func (q *quit) sleepUntil(t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-q.c:
		return false
	}
}
