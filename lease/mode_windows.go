//go:build windows

package lease

// recordMode is the mode of every record file. Windows turns a mode without
// write permission into the read-only attribute, which hard links share and
// which makes MoveFileEx refuse to replace the file: PATH, a link to the
// newest version, could then never be replaced again. So records are
// writable there, and only the documentation says not to write PATH.
const recordMode = 0o666
