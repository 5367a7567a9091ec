//go:build unix

package cli

import "golang.org/x/sys/unix"

// signalNum is the signal named name, with its SIG prefix, or 0.
func signalNum(name string) unix.Signal { return unix.SignalNum(name) }
