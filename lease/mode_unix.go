//go:build !windows

package lease

// recordMode is the mode of every record file: read-only, since PATH and the
// newest version share an inode, so writing PATH in place would rewrite the
// truth; the mode stops that (for all but root). Our own descriptor was
// opened for writing before the mode applies.
const recordMode = 0o444
