//go:build !unix

package lease

// syncDir does nothing where directories cannot be synced: NTFS journals
// its metadata, and Windows cannot open a directory for flushing.
func syncDir(string) error { return nil }
