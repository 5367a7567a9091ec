//go:build unix

package supervisor

import (
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// signalName names sig as kill -l does, with the SIG prefix.
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return name
		}
		return "signal " + strconv.Itoa(int(s))
	}
	return sig.String()
}
