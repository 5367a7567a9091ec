//go:build !unix

package supervisor

import "os/exec"

type terminal struct{}

func takeTerminal(*exec.Cmd) *terminal { return nil }

type stops struct{}

func catchStops() *stops { return nil }

func (*stops) release() {}

func (*terminal) restore() {}
