//go:build !unix

package supervisor

import (
	"os"
	"syscall"
)

func forwardedSignals(bool) []os.Signal { return []os.Signal{os.Interrupt, syscall.SIGTERM} }

func heldOff() []os.Signal { return nil }

func isShutdown(sig os.Signal) bool { return sig == os.Interrupt || sig == syscall.SIGTERM }

func endsWait(sig os.Signal) bool { return isShutdown(sig) }

func signalStatus(sig os.Signal) int {
	s, _ := sig.(syscall.Signal)
	return 128 + int(s)
}

func ignoredSignals() func(os.Signal) bool { return func(os.Signal) bool { return false } }
