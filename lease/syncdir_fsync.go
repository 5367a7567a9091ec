//go:build unix && !linux

package lease

import "os"

// syncDir makes the directory entries created in dir durable: on Unix a
// link or rename reaches the disk only when its directory is synced.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
