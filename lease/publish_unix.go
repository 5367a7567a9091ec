//go:build unix

package lease

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// publish renames the temp file temp onto path, replacing what stands
// there (a symlink too, which it does not follow). It names the temp file
// by the descriptor of the tempDir that the write used, not by a path, so
// that a symlink swapped in at PATH.d or PATH.d/tmp since cannot make it
// move another directory's file.
func (d *versionDir) publish(temp, path string) error {
	dir, err := d.tmp.OpenFile(".", os.O_RDONLY|noPoll, 0)
	if err != nil {
		return inDir(err, d.s.tmp, ".")
	}
	defer dir.Close()
	if err := unix.Renameat(int(dir.Fd()), temp, unix.AT_FDCWD, path); err != nil {
		return &os.LinkError{Op: "rename", Old: filepath.Join(d.s.tmp, temp), New: path, Err: err}
	}
	return nil
}
