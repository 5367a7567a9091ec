//go:build !unix

package lease

import (
	"os"
	"path/filepath"
)

// publish renames the temp file temp onto path, replacing what stands
// there. Where there is no renameat (Windows), it names the temp file by
// its path.
func (d *versionDir) publish(temp, path string) error {
	return os.Rename(filepath.Join(d.s.tmp, temp), path)
}
