package supervisor

import (
	"errors"
	"fmt"

	"github.com/leaserun/leaserun/lease"
)

// Exit statuses of the leaserun command (sysexits.h and the shell's).
const (
	ExitUsage      = 64  // a bad flag or value, no command, no lease path
	ExitIO         = 74  // an I/O error on the lease file
	ExitHeld       = 75  // the lease is held (or the wait timed out)
	ExitLost       = 76  // the lease was lost while the child ran
	ExitCannotExec = 126 // the command was found but could not be executed
	ExitNotFound   = 127 // the command was not found
)

var (
	// ErrUsage is wrapped by every error about a bad setting.
	ErrUsage = errors.New("usage error")
	// ErrNotFound is wrapped when the command can't be found.
	ErrNotFound = errors.New("command not found")
	// ErrCannotExec is wrapped when the command was found but could not be
	// executed.
	ErrCannotExec = errors.New("command could not be executed")
	// ErrInterrupted is wrapped when a signal ended the wait for the lease.
	ErrInterrupted = errors.New("interrupted")
	// ErrUnsupported is wrapped, with errors.ErrUnsupported, when the
	// platform can't run a command under a lease (Windows: no process
	// groups to stop).
	ErrUnsupported = errors.New("running a command under a lease is not supported on this platform")
)

// ExitError is an error together with the exit status it calls for.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the status to exit with (kong's ExitCoder).
func (e *ExitError) ExitCode() int { return e.Code }

// ExitCode returns the exit status err calls for: that of the first error in
// its chain with an ExitCode method, 0 for nil, 1 otherwise.
func ExitCode(err error) int {
	var ec interface{ ExitCode() int }
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return ec.ExitCode()
	default:
		return 1
	}
}

// UsageError is a bad setting. Flag names the leaserun flag it came from.
type UsageError struct {
	Flag string // without dashes, e.g. "ttl"
	Msg  string
}

func usagef(flag, format string, args ...any) *UsageError {
	return &UsageError{Flag: flag, Msg: fmt.Sprintf(format, args...)}
}

func (e *UsageError) Error() string {
	if e.Flag == "" {
		return e.Msg
	}
	return "--" + e.Flag + ": " + e.Msg
}

// Is makes errors.Is(err, ErrUsage) true.
func (e *UsageError) Is(target error) bool { return target == ErrUsage }

// ExitCode is ExitUsage.
func (e *UsageError) ExitCode() int { return ExitUsage }

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

// ExitCode is ExitLost.
func (e *LostError) ExitCode() int { return ExitLost }
