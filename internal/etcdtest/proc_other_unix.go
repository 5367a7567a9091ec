//go:build unix && !linux

package etcdtest

import "syscall"

// sysProcAttr puts a member in its own process group, so that a signal
// sent to it reaches nothing else.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
