package supervisor

import (
	"errors"
	"strconv"
	"syscall"

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
