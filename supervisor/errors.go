package supervisor

import (
	"errors"
	"strconv"
	"syscall"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// Errors about the command, wrapped by Run's error when it can't start it.
var (
	// ErrNotFound: the command was not found.
	ErrNotFound = errors.New("command not found")
	// ErrCannotExec: the command was found but could not be executed.
	ErrCannotExec = errors.New("command could not be executed")
)

// ExitError reports that the command exited with a non-zero status, or was
// killed by a signal, as *exec.ExitError does for exec.Cmd.Run.
type ExitError struct {
	// Code is the status as a shell reports it: the command's exit status,
	// or 128+N when signal N killed it.
	Code int
	// Signal is the signal that killed the command, or 0.
	Signal syscall.Signal
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return "signal: " + e.Signal.String()
	}
	return "exit status " + strconv.Itoa(e.Code)
}

// InterruptedError reports that a signal ended the wait for the lease: a
// shell's status for it is 128+Signal.
type InterruptedError struct {
	Path   string
	Signal syscall.Signal
}

func (e *InterruptedError) Error() string {
	return "interrupted by " + signalName(e.Signal) + " while taking the lease " + e.Path
}

// IOError reports that the lease file could not be read or written while
// the lease was being taken.
type IOError struct {
	Path string
	Err  error
}

func (e *IOError) Error() string { return "lease " + e.Path + ": " + e.Err.Error() }
func (e *IOError) Unwrap() error { return e.Err }

// LostError reports that the lease was lost, or could no longer be kept, while
// the command or function ran. errors.Is(err, lease.ErrLost) is true.
type LostError struct {
	Path   string
	Reason string
	Err    error // the cause, if any
}

func (e *LostError) Error() string {
	msg := "lease " + e.Path + " lost: " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *LostError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, lease.ErrLost) true, whatever the cause.
func (e *LostError) Is(target error) bool { return target == lease.ErrLost }

// MaxRuntimeError reports that the command ran for Config.MaxRuntime and
// was stopped for it (Do: its function's context was cancelled): the stop
// signal, then SIGKILL to its group after the grace period. The lease was
// released. The leaserun command exits 124 for it, as timeout(1) does.
type MaxRuntimeError struct {
	Path       string
	MaxRuntime time.Duration
	// Exit is how the command ended: the stop signal or SIGKILL (128+N),
	// or a status of its own if it exited in time. Zero for Do.
	Exit ExitError
}

func (e *MaxRuntimeError) Error() string {
	msg := "lease " + e.Path + ": stopped after the maximum runtime " + e.MaxRuntime.String()
	if e.Exit.Code != 0 || e.Exit.Signal != 0 {
		msg += " (" + e.Exit.Error() + ")"
	}
	return msg
}

// exitMaxRuntime is the status that the slot of a run stopped for its
// maximum runtime records: timeout(1)'s, as the leaserun command exits.
const exitMaxRuntime = 124
