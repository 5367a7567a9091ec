//go:build unix && !linux

package supervisor

// becomeSubreaper reports false: only Linux has child subreapers.
func becomeSubreaper() bool { return false }

func killOrphans() {}
