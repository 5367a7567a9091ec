//go:build !unix

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// supervise refuses: without process groups, a command's children could
// not be stopped with it (Do works).
func supervise(context.Context, *Config, *exec.Cmd) error {
	return fmt.Errorf("%w: running a command under a lease is not supported on this platform: %w",
		ErrCannotExec, errors.ErrUnsupported)
}

// signalName names sig for InterruptedError, which Run does not return here.
func signalName(sig os.Signal) string { return sig.String() }
