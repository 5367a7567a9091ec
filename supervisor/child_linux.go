// The Linux facilities for the child: a parent-death signal, waiting for
// its exit without reaping it (so that its process group's id stays
// reserved), its stops and continues, a child subreaper, and reaping
// orphans as PID 1. child_other.go says what stands in for each elsewhere.

package supervisor

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/procstat"
)

// setParentDeathSignal has the kernel SIGKILL the child when leaserun dies
// (SIGKILL, OOM), so no orphan runs on unguarded. The signal is tied to the
// thread that started the child: see startChild.
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

// si_code of a SIGCHLD (and of waitid's report).
const (
	cldStopped   = 5 // CLD_STOPPED
	cldContinued = 6 // CLD_CONTINUED
)

// waitNoReap blocks until the process pid has exited, leaving it a zombie:
// its pid, and so its process group's id, stays reserved until it is reaped.
// Meanwhile it tells job of each stop and continue of pid. It reports
// whether it could wait: if not, the caller must reap first.
func waitNoReap(pid int, job *jobState) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WSTOPPED|unix.WCONTINUED|unix.WNOWAIT, nil)
		switch {
		case err == unix.EINTR:
		case err != nil:
			return false
		case info.Code == cldStopped || info.Code == cldContinued:
			jobChanges(pid, job)
		default:
			return true
		}
	}
}

// jobChanges tells job of the stops and continues of the child pid not yet
// reported, and consumes their reports (not its exit's).
func jobChanges(pid int, job *jobState) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED|unix.WCONTINUED|unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
		case err != nil || info.Signo == 0:
			return
		case info.Code == cldStopped:
			job.set(true)
		case info.Code == cldContinued:
			job.set(false)
		default:
			return
		}
	}
}

// isZombie reports whether the child pid has exited and is waiting to be
// reaped, without reaping it.
func isZombie(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
	return err == nil && info.Signo != 0
}

// becomeSubreaper makes this process a child subreaper: what the child
// leaves behind when its parent dies, even outside its process group (a
// daemon that called setsid), is reparented here rather than to PID 1, so
// that killOrphans can find it.
func becomeSubreaper() bool {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil
}

// killOrphans SIGKILLs and reaps every remaining child of this process, and
// then the children those leave behind (reparented here in turn), so that
// nothing the command started runs on once the lease is released, nor
// stays behind unreaped: those already dead (zombies, such as what the
// command left in its process group, killed when it exited) are reaped too.
// It runs after the command itself has been reaped, when the only children
// left are orphans.
func killOrphans() {
	for range 100 { // each round kills one generation
		if !hasChildren() {
			return // the common case, and far cheaper than reading /proc
		}
		pids := children()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL) // nothing, to a zombie
		}
		for _, pid := range pids {
			wait4(pid, 0) // ECHILD if the reaper got there first
		}
	}
}

// hasChildren reports whether this process has any child, running or not
// yet reaped. As a subreaper it has none once the command and everything it
// started are gone: an orphan is reparented here before its parent's exit is
// reported.
func hasChildren() bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err != unix.ECHILD
		}
	}
}

// children lists this process's children, zombies included.
func children() []int {
	procs, _ := procstat.All()
	var pids []int
	for _, p := range procs {
		if p.PPID == os.Getpid() {
			pids = append(pids, p.PID)
		}
	}
	return pids
}

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
