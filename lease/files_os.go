//go:build !linux

package lease

import (
	"io"
	"io/fs"
	"os"
	"syscall"
)

// The file operations of a write, through package os (files_syscall.go makes
// them with plain system calls).

// createExcl creates name, which must not exist, with permissions perm and
// writes data to it. If the write fails, it removes the file again.
func createExcl(name string, data []byte, perm uint32) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(perm))
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// readBounded reads at most MaxRecordSize+1 bytes of name: enough to tell an
// oversized file from a record without loading it.
// It opens name without blocking (a FIFO would wait for a writer) and reads
// only a regular file.
func readBounded(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.IsDir() { // an I/O error, as a read would say: never free
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
	} else if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotRegular}
	}
	return io.ReadAll(io.LimitReader(f, MaxRecordSize+1))
}

// scanDir calls fn with the name of every entry of dir but "." and "..".
// The name is valid only during the call.
func scanDir(dir string, fn func(name []byte)) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		fn([]byte(name))
	}
	return nil
}

// replaceFile renames old to new, replacing new.
func replaceFile(old, new string) error { return os.Rename(old, new) }
