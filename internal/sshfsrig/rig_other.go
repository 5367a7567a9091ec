//go:build !linux

package sshfsrig

import (
	"errors"
	"testing"
)

// Available reports whether the rig can run here. It never can outside Linux.
func Available() error {
	return errors.New("sshfsrig: only supported on Linux")
}

// Start skips the test: the rig is Linux-only.
func Start(tb testing.TB, n int) *Rig {
	tb.Helper()
	tb.Skip(Available())
	return nil
}

// StartHosts skips the test: the rig is Linux-only.
func StartHosts(tb testing.TB, options ...string) *Rig {
	tb.Helper()
	tb.Skip(Available())
	return nil
}
