//go:build unix && !linux

package etcdtest

import "syscall"

// sysProcAttr puts a member in its own process group, so that a signal
// sent to it reaches nothing else.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// stopped can't tell whether a process has stopped here: it says so at
// once, and Freeze returns when the signal is sent.
func stopped(int) bool { return true }
