package supervisor

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// reservedSignal: a Go program can't catch 32 and 33, taken by the C
// library's threads, nor 34, which the Go runtime keeps for musl's (and is
// glibc's SIGRTMIN). 32 and 34 end leaserun as SIGKILL would.
func reservedSignal(s syscall.Signal) bool { return s >= 32 && s <= 34 }

// pipeForwardable: the kernel raises the SIGPIPE of a failed write on the
// thread that wrote, so a thread that blocks SIGPIPE keeps its own from the
// process (see Config.ForwardSIGPIPE).
const pipeForwardable = true

// ignoredMask is the process's ignored signals, bit N-1 for signal N, from
// /proc/self/status (0 if it can't be read).
func ignoredMask() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("\nSigIgn:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	mask, _ := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 64)
	return mask
}
