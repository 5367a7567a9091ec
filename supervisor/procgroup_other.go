//go:build !unix

package supervisor

import (
	"errors"
	"os"
	"syscall"
)

// processGroups: this platform has no process groups to stop a command
// with, so Run refuses (Do works).
const processGroups = false

func setProcessGroup(*syscall.SysProcAttr) {}

func signalGroup(int, os.Signal) error { return errors.ErrUnsupported }

func (g *procGroup) hangUp() {}
