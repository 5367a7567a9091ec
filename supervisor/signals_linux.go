package supervisor

import "syscall"

// maxSignal is the highest signal number: Linux has real-time signals up to
// 64, and leaserun forwards those too.
const maxSignal syscall.Signal = 64

// reservedSignal: 32 and 33 are taken by the C library's threads.
func reservedSignal(s syscall.Signal) bool { return s == 32 || s == 33 }
