package supervisor

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// reaper reaps every process reparented to leaserun when it runs as PID 1 (a
// container's entrypoint). It reaps the child too, so that the child is
// waited for by this one loop and never by two waiters, and hands its status
// on.
type reaper struct {
	*quit
	sigchld chan os.Signal

	mu     sync.Mutex // held while the child starts and during each sweep
	pid    int        // the child, once started
	zombie func()     // called once the child exited, before it is reaped
	job    *jobState  // told of the child's stops and continues
	done   bool       // the child has been reaped
	status chan syscall.WaitStatus
}

// newReaper returns a reaper if leaserun is PID 1 (or force is set), and nil
// otherwise. It must be made before the child starts.
func newReaper(force bool) *reaper {
	if os.Getpid() != 1 && !force {
		return nil
	}
	r := &reaper{
		quit:    newQuit(),
		sigchld: make(chan os.Signal, 1),
		status:  make(chan syscall.WaitStatus, 1),
	}
	signal.Notify(r.sigchld, syscall.SIGCHLD)
	return r
}

// close stops listening for SIGCHLD.
func (r *reaper) close() {
	if r != nil {
		signal.Stop(r.sigchld)
	}
}

// startChild runs start, which starts the child, so that no sweep can reap
// the child before its pid is known. zombie is called when the child has
// exited, before it is reaped; job is told of its stops and continues.
func (r *reaper) startChild(start func() (pid int, err error), zombie func(), job *jobState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err == nil {
		r.pid, r.zombie, r.job = pid, zombie, job
	}
	return err
}

// run reaps on every SIGCHLD. Interrupted, it goes on until the child has
// been reaped: the child's actor is waiting for its status.
func (r *reaper) run() error {
	quit := r.c
	quitting := false
	for {
		if r.sweep() && quitting {
			return nil
		}
		select {
		case <-r.sigchld:
		case <-quit:
			quitting, quit = true, nil
		}
	}
}

// sweep reaps every process that exited, and reports whether the child has
// been reaped. It tells of the child's stops and continues too (a SIGCHLD
// says those as well).
func (r *reaper) sweep() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pid > 0 && !r.done {
		jobChanges(r.pid, r.job)
	}
	for {
		if r.pid > 0 && !r.done && isZombie(r.pid) {
			r.zombie()
			r.deliver(wait4(r.pid, 0))
			continue
		}
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return r.done
		}
		if pid == r.pid && !r.done {
			// It exited between isZombie and Wait4.
			r.zombie()
			r.deliver(ws)
		}
	}
}

func (r *reaper) deliver(ws syscall.WaitStatus) {
	r.done = true
	r.status <- ws
}

func wait4(pid, options int) syscall.WaitStatus {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, options, nil)
		if err != syscall.EINTR {
			return ws
		}
	}
}
