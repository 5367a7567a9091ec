//go:build unix

package supervisor

import (
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/procstat"
)

// terminal is a controlling terminal whose foreground leaserun handed to the
// child's process group, so that Ctrl-C reaches the child once (from the
// terminal, not also from leaserun) and a TTY program can read its terminal.
type terminal struct {
	fd   int
	pgrp int // leaserun's process group, the foreground before the child
}

// takeTerminal arranges for the child to start as the terminal's foreground
// process group when leaserun has that foreground, its stdin, stdout or
// stderr is the terminal, and neither stdin nor stdout is a pipe. Such a
// pipe means a pipeline ("leaserun -- make | less", "producer | leaserun --
// cmd"), whose other members share leaserun's process group: handing the
// foreground to the child would leave them in the background, and less, say,
// could no longer read the keyboard. It returns nil, changing nothing,
// otherwise.
func takeTerminal(cmd *exec.Cmd) *terminal {
	tty := -1
	for i, stdio := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		if stdio == nil {
			continue // the null device
		}
		f, ok := stdio.(*os.File)
		if !ok {
			if i < 2 {
				return nil // os/exec will make a pipe to copy it through
			}
			continue
		}
		fd := int(f.Fd())
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO && i < 2 {
			return nil
		}
		if tty < 0 {
			if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil && fg == unix.Getpgrp() {
				tty = fd
			}
		}
	}
	if tty < 0 {
		return nil // no terminal, or leaserun runs in the background
	}
	cmd.SysProcAttr.Foreground = true
	cmd.SysProcAttr.Ctty = tty // with Foreground, a descriptor of the parent's
	return &terminal{fd: tty, pgrp: unix.Getpgrp()}
}

// ignoreTTOU keeps SIGTTOU from stopping leaserun once the child runs:
// stopped, leaserun would stop its guard and renewals while the child ran on
// past the lease. With the foreground handed to the child, leaserun is a
// background process, and with "stty tostop" its next log line raises
// SIGTTOU. Ignored, not caught (as SIGTTIN is, see catchSignals): caught, the
// one raised by leaserun's own write to the terminal would restart the write
// forever. Not before the child starts, which would inherit the ignored
// disposition; and the Go runtime cannot restore it, so SIGTTOU stays
// ignored in this process after Run.
func ignoreTTOU() { signal.Ignore(syscall.SIGTTOU) }

// restore gives the terminal back to leaserun's process group, from the
// background: with SIGTTOU ignored, so that the call is not stopped.
func (t *terminal) restore() {
	if t == nil {
		return
	}
	signal.Ignore(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(t.fd, unix.TIOCSPGRP, t.pgrp)
}

// jobState is the child's job-control state as its waiter last saw it:
// stopped or running. The waiter tells of each stop and continue where the
// platform can (Linux).
type jobState struct {
	mu      sync.Mutex
	stopped bool
	stops   int           // how many stops were seen
	changed chan struct{} // signalled on each change
}

func newJobState() *jobState { return &jobState{changed: make(chan struct{}, 1)} }

// set records that the child stopped, or continued.
func (j *jobState) set(stopped bool) {
	j.mu.Lock()
	j.stopped = stopped
	if stopped {
		j.stops++
	}
	j.mu.Unlock()
	select {
	case j.changed <- struct{}{}:
	default:
	}
}

func (j *jobState) get() (stopped bool, stops int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stopped, j.stops
}

// orphanCheckEvery is how often hangup looks again, while the child is
// stopped, whether leaserun's process group has been orphaned.
const orphanCheckEvery = 200 * time.Millisecond

// hangup is the actor that does for a stopped child what the kernel does
// for a stopped process group that becomes orphaned (POSIX: none of its
// members has a parent in another group of the same session, so no shell
// is left whose job control could continue it): it sends the group SIGHUP,
// then SIGCONT. The kernel can't see that case for the child's group:
// leaserun, its parent, sits in another group of the same session. So
// hangup watches leaserun's own group instead, which is the job of the
// shell that started leaserun: when it becomes orphaned while the child is
// stopped (after Ctrl-Z, the shell was killed, or its terminal closed),
// nothing but leaserun can continue the child, which would otherwise hold
// the lease, stopped, for as long as leaserun renews it.
//
// A child that was stopped when leaserun's group was orphaned already (a
// SIGSTOP under a service manager: a deliberate pause) is left stopped, as
// the kernel leaves it: SIGCONT, sent to leaserun or to the child, resumes
// it. (Whether the group was orphaned at the stop is judged when leaserun
// notices the stop, a moment after it.)
type hangup struct {
	*quit
	job      *jobState
	group    *procGroup
	orphaned func() bool // whether leaserun's process group is orphaned
	log      *slog.Logger
}

func (h *hangup) run() error {
	var tick <-chan time.Time
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	seen, orphanedAtStop, done := 0, false, 0
	for {
		select {
		case <-h.c:
			return nil
		case <-h.job.changed:
		case <-tick:
		}
		stopped, stops := h.job.get()
		if !stopped || stops == done {
			if ticker != nil {
				ticker.Stop()
				ticker, tick = nil, nil
			}
			continue
		}
		orphaned := h.orphaned()
		if stops != seen {
			seen, orphanedAtStop = stops, orphaned
			h.log.Debug("child stopped", "orphaned", orphaned)
		}
		if orphaned && !orphanedAtStop {
			h.log.Warn("the child is stopped and its job control is gone: hanging it up", "signal", "SIGHUP")
			h.group.hangUp()
			done = stops
			continue
		}
		if ticker == nil {
			ticker = time.NewTicker(orphanCheckEvery)
			tick = ticker.C
		}
	}
}

// pgrpOrphaned reports whether this process's group is orphaned as POSIX
// has it: none of its members has a parent in another group of the same
// session, so no shell's job control is left that could continue it. Its
// parent is asked first, which settles the common cases (a shell's job,
// whose parent is the shell) in a few system calls; only otherwise are the
// group's other members looked for in /proc (Linux: elsewhere, where
// leaserun does not see the child's stops, it reports false).
func pgrpOrphaned() bool {
	pgrp := unix.Getpgrp()
	sid, err := unix.Getsid(0)
	if err != nil {
		return false
	}
	links := func(ppid int) bool {
		if ppid <= 0 { // outside this PID namespace
			return false
		}
		pg, err1 := unix.Getpgid(ppid)
		s, err2 := unix.Getsid(ppid)
		return err1 == nil && err2 == nil && pg != pgrp && s == sid
	}
	if links(os.Getppid()) {
		return false
	}
	procs, err := procstat.All()
	if err != nil {
		return false // can't tell: not orphaned, nothing is done
	}
	for _, p := range procs {
		if p.PID != os.Getpid() && p.PGRP == pgrp && p.Alive() && links(p.PPID) {
			return false
		}
	}
	return true
}
