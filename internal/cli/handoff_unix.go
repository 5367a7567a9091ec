//go:build unix

package cli

import (
	"os"
	"os/exec"
	"syscall"
)

const exeSuffix = ""

var lookPath = exec.LookPath

// replaceProcess executes path with argv in this process's place (execve),
// so that the process keeps its PID: a supervisor (systemd, a container
// runtime) that started leaserun sees no difference, and PID 1 stays PID 1.
func replaceProcess(path string, argv []string) error {
	return syscall.Exec(path, argv, os.Environ())
}
