//go:build unix && !linux

package supervisor

import "syscall"

// maxSignal is the highest classic signal number.
const maxSignal syscall.Signal = 31

func reservedSignal(syscall.Signal) bool { return false }
