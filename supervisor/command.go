package supervisor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"

	"github.com/leaserun/leaserun/lease"
)

// Command is what Run runs.
type Command struct {
	// Args is the command line. Args[0] is looked up as a shell would
	// (exec.LookPath, with a relative PATH entry allowed).
	Args []string
	// Env is the child's environment; nil means leaserun's own. Run adds
	// LEASERUN_LEASE_PATH (absolute), LEASERUN_INSTANCE_ID and
	// LEASERUN_EPOCH.
	Env []string
	// Dir is the child's working directory; empty means leaserun's own.
	Dir string
	// Stdin, Stdout and Stderr are the child's; nil means leaserun's own.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Environment variables the child gets.
const (
	EnvLeasePath  = "LEASERUN_LEASE_PATH"
	EnvInstanceID = "LEASERUN_INSTANCE_ID"
	EnvEpoch      = "LEASERUN_EPOCH"
)

// lookPath finds the command before the lease is taken: not found is
// ExitNotFound, found but not executable ExitCannotExec.
func lookPath(name string) (string, error) {
	path, err := exec.LookPath(name)
	if errors.Is(err, exec.ErrDot) {
		err = nil // a relative PATH entry: a shell would run it too
	}
	if err == nil {
		return path, nil
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return "", &ExitError{Code: ExitNotFound, Err: fmt.Errorf("%w: %s", ErrNotFound, name)}
	}
	return "", &ExitError{Code: ExitCannotExec, Err: fmt.Errorf("%w: %s: %w", ErrCannotExec, name, err)}
}

// command makes the child's exec.Cmd.
func (c *Command) command(path, leasePath string, l *lease.Lease) *exec.Cmd {
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	env = append(slices.Clip(env),
		EnvLeasePath+"="+leasePath,
		EnvInstanceID+"="+l.InstanceID(),
		EnvEpoch+"="+strconv.FormatUint(l.Epoch(), 10))
	cmd := &exec.Cmd{
		Path:        path,
		Args:        c.Args,
		Env:         env,
		Dir:         c.Dir,
		Stdin:       c.Stdin,
		Stdout:      c.Stdout,
		Stderr:      c.Stderr,
		SysProcAttr: &syscall.SysProcAttr{},
	}
	if cmd.Stdin == nil {
		cmd.Stdin = os.Stdin
	}
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	setProcessGroup(cmd.SysProcAttr)
	setParentDeathSignal(cmd.SysProcAttr)
	return cmd
}
