package supervisor

import "syscall"

// maxSignal is the highest signal number: Linux has real-time signals up to
// 64, and leaserun forwards those too.
const maxSignal syscall.Signal = 64

// reservedSignal: a Go program can't catch 32 and 33, taken by the C
// library's threads, nor 34, which the Go runtime keeps for musl's (and is
// glibc's SIGRTMIN). 32 and 34 end leaserun as SIGKILL would.
func reservedSignal(s syscall.Signal) bool { return s >= 32 && s <= 34 }

// pipeForwardable: the kernel raises the SIGPIPE of a failed write on the
// thread that wrote, so a thread that blocks SIGPIPE keeps its own from the
// process (see Config.ForwardSIGPIPE).
const pipeForwardable = true
