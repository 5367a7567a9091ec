//go:build !unix

package supervisor

import (
	"io"
	"syscall"
)

type terminal struct{}

func takeTerminal(io.Reader, *syscall.SysProcAttr) *terminal { return nil }

func ignoreStops() {}

func resetStops() {}

func (*terminal) restore() {}
