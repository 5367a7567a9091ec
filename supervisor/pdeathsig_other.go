//go:build unix && !linux

package supervisor

import "syscall"

// setParentDeathSignal does nothing: only Linux has a parent-death signal.
// Elsewhere a child outlives a leaserun killed with SIGKILL.
func setParentDeathSignal(*syscall.SysProcAttr) {}
