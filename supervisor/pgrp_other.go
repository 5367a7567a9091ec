//go:build unix && !linux

package supervisor

// pgrpOrphaned reports false: only on Linux does leaserun see the child's
// stops (see hangup).
func pgrpOrphaned() bool { return false }
