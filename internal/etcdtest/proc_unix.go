//go:build unix

package etcdtest

import (
	"os"
	"syscall"
)

var sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT

// terminate asks p to end: SIGCONT, should it be frozen, then SIGTERM.
func terminate(p *os.Process) {
	p.Signal(syscall.SIGCONT)
	p.Signal(syscall.SIGTERM)
}
