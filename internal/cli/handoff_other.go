//go:build !unix

package cli

import (
	"errors"
	"os"
	"os/exec"
)

const exeSuffix = ".exe"

var lookPath = exec.LookPath

// replaceProcess runs path with argv and ends leaserun with its status:
// where a process can't be replaced by another (Windows), the other runs
// as its child.
func replaceProcess(path string, argv []string) error {
	cmd := exec.Command(path, argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exitStatus(exit.ExitCode())
	}
	if err != nil {
		return err
	}
	return exitStatus(0)
}
