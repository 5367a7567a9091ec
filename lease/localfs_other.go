//go:build !linux

package lease

// localFS: only Linux tells local filesystems apart; elsewhere Wait polls
// as for a network filesystem.
func localFS(string) bool { return false }
