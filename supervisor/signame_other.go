//go:build !unix

package supervisor

import (
	"os"
	"syscall"
)

const maxSignal syscall.Signal = 15

var signalNames = map[string]syscall.Signal{
	"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGKILL": syscall.SIGKILL, "SIGTERM": syscall.SIGTERM,
}

func signalByName(name string) syscall.Signal { return signalNames[name] }

func signalName(sig os.Signal) string {
	for name, s := range signalNames {
		if s == sig {
			return name
		}
	}
	return sig.String()
}
