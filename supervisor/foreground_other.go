//go:build !unix

package supervisor

import "os/exec"

type terminal struct{}

func takeTerminal(*exec.Cmd) *terminal { return nil }

func ignoreTTOU() {}

func (*terminal) restore() {}
