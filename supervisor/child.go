package supervisor

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// errChildExited ends the group when the child has exited and been reaped.
var errChildExited = errors.New("child exited")

// child is the command: the child actor. It runs in a process group of its
// own, and is started from a goroutine that stays locked to its OS thread
// until the child has been waited for, because the parent-death signal fires
// when the thread that started the child exits, not the process.
type child struct {
	cmd   *exec.Cmd
	group *procGroup

	job      *jobState     // its stops and continues
	done     chan struct{} // closed once the child has been reaped
	status   syscall.WaitStatus
	exitedAt time.Time // when its exit was noticed, before reaping
}

// startChild starts cmd. With a reaper (PID 1), the reaper waits for the
// child; otherwise the goroutine that started it does.
func startChild(cmd *exec.Cmd, r *reaper) (*child, error) {
	c := &child{cmd: cmd, job: newJobState(), done: make(chan struct{})}
	started := make(chan error, 1)
	go c.run(r, started)
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

func (c *child) run(r *reaper, started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	start := func() (int, error) {
		if err := c.cmd.Start(); err != nil {
			return 0, err
		}
		c.group = &procGroup{pgid: c.cmd.Process.Pid}
		return c.cmd.Process.Pid, nil
	}
	if r != nil {
		if err := r.startChild(start, c.exited, c.job); err != nil {
			started <- err
			return
		}
		started <- nil
		c.status = <-r.status
		c.cmd.Wait() // the reaper reaped it: this only closes what Start opened
	} else {
		if _, err := start(); err != nil {
			started <- err
			return
		}
		started <- nil
		if waitNoReap(c.cmd.Process.Pid, c.job) {
			c.exited()
		}
		c.cmd.Wait()
		c.exited()
		if ps := c.cmd.ProcessState; ps != nil {
			c.status, _ = ps.Sys().(syscall.WaitStatus)
		}
	}
	close(c.done)
}

// exited is called once the child has exited, before it is reaped where
// the platform can tell: it kills what the child left in its group.
func (c *child) exited() {
	if c.exitedAt.IsZero() {
		c.exitedAt = time.Now()
	}
	c.group.close()
}

// wait is the actor's execute: it returns once the child has been reaped.
func (c *child) wait() error {
	<-c.done
	return errChildExited
}

// interrupt kills the child and its group at once: the lease is lost.
func (c *child) interrupt(error) { c.group.signal(syscall.SIGKILL) }

// exitCode is the child's status as a shell reports it: 128+N for signal N.
func (c *child) exitCode() int {
	if c.status.Signaled() {
		return 128 + int(c.status.Signal())
	}
	return c.status.ExitStatus()
}

// describe is the child's status for the log.
func (c *child) describe() []any {
	if c.status.Signaled() {
		return []any{"signal", c.status.Signal().String(), "status", c.exitCode()}
	}
	return []any{"status", c.exitCode()}
}
