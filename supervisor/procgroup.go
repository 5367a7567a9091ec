package supervisor

import (
	"os"
	"sync"
	"syscall"
)

// procGroup is the child's process group. Signals go to it only until the
// child has been reaped: while the child is running or a zombie its pid,
// which is the group's id, cannot be reused.
type procGroup struct {
	mu     sync.Mutex
	pgid   int
	closed bool
}

// signal sends sig to the group, unless the child has been reaped.
func (g *procGroup) signal(sig os.Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		signalGroup(g.pgid, sig)
	}
}

// close kills whatever the child left running in its group, so nothing the
// command started outlives the lease, and stops further signals. It is
// called before the child is reaped where the platform allows.
func (g *procGroup) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		signalGroup(g.pgid, syscall.SIGKILL)
		g.closed = true
	}
}
