//go:build unix && !linux

package supervisor

import "syscall"

func reservedSignal(syscall.Signal) bool { return false }

// pipeForwardable: not here, where a write's SIGPIPE need not be raised on
// the thread that wrote (macOS), so no thread can keep its own SIGPIPE from
// the process.
const pipeForwardable = false

// ignoredMask: there is no portable way to read a signal's disposition
// without changing it; signal.Ignored alone says.
func ignoredMask() uint64 { return 0 }
