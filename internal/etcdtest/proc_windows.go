package etcdtest

import (
	"os"
	"syscall"
)

// Windows has no SIGSTOP: Freeze and Thaw do nothing there, and the tests
// that need them are for Unix.
var sigStop, sigCont syscall.Signal

func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate ends p: Windows has no SIGTERM to send.
func terminate(p *os.Process) { p.Kill() }

// stopped says yes at once: there is no SIGSTOP here, and Freeze does
// nothing.
func stopped(int) bool { return true }
