//go:build linux

package lease

import (
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
)

// The file operations of a write, made with plain system calls. Package os
// would also switch every descriptor it opens to non-blocking mode, try to
// register it with the runtime's poller (which refuses regular files and
// directories) and switch it back: four fcntl calls and one epoll_ctl per
// open, and os.Rename looks at the target with lstat first. Those were
// eleven of the twenty-one system calls a renewal made. Errors have the same
// types as package os returns.

func ignoringEINTR[T any](op func() (T, error)) (T, error) {
	for {
		v, err := op()
		if err != syscall.EINTR {
			return v, err
		}
	}
}

// createExcl creates name, which must not exist, with permissions perm and
// writes data to it. If the write fails, it removes the file again.
func createExcl(name string, data []byte, perm uint32) error {
	fd, err := ignoringEINTR(func() (int, error) {
		return syscall.Open(name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, perm)
	})
	if err != nil {
		return &fs.PathError{Op: "open", Path: name, Err: err}
	}
	for len(data) > 0 {
		n, err := ignoringEINTR(func() (int, error) { return syscall.Write(fd, data) })
		if err == nil && n <= 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			syscall.Close(fd)
			syscall.Unlink(name)
			return &fs.PathError{Op: "write", Path: name, Err: err}
		}
		data = data[n:]
	}
	// A network filesystem reports a failed write-back here: never ignore it.
	if err := syscall.Close(fd); err != nil {
		syscall.Unlink(name)
		return &fs.PathError{Op: "close", Path: name, Err: err}
	}
	return nil
}

// readBounded reads at most MaxRecordSize+1 bytes of name: enough to tell an
// oversized file from a record without loading it. It opens name without
// blocking (a FIFO would wait for a writer) and reads only a regular file.
func readBounded(name string) ([]byte, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
	case syscall.S_IFDIR: // an I/O error, as read(2) would say: never free
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
	default:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotRegular}
	}
	buf := make([]byte, 512)
	n := 0
	for {
		if n == len(buf) {
			if n > MaxRecordSize {
				break
			}
			buf = append(buf, make([]byte, min(len(buf), MaxRecordSize+1-len(buf)))...)
		}
		m, err := ignoringEINTR(func() (int, error) { return syscall.Read(fd, buf[n:]) })
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if m <= 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
}

// scanDir calls fn with the name of every entry of dir but "." and "..".
// The name is valid only during the call.
func scanDir(dir string, fn func(name []byte)) error {
	fd, err := ignoringEINTR(func() (int, error) {
		return syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	})
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer syscall.Close(fd)
	buf := direntBufs.Get().(*[8192]byte)
	defer direntBufs.Put(buf)
	for {
		n, err := ignoringEINTR(func() (int, error) { return syscall.Getdents(fd, buf[:]) })
		if err != nil {
			return &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return nil
		}
		parseDirents(buf[:n], fn)
	}
}

// direntBufs holds buffers for scanDir, which would otherwise allocate one
// per listing: the system call makes it escape.
var direntBufs = sync.Pool{New: func() any { return new([8192]byte) }}

// parseDirents calls fn with the names in a buffer of struct
// linux_dirent64: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1), then
// the name, NUL-terminated and padded to d_reclen.
func parseDirents(buf []byte, fn func(name []byte)) {
	const nameOff = 19
	for len(buf) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(buf[16:]))
		if reclen < nameOff || reclen > len(buf) {
			return
		}
		ino := binary.NativeEndian.Uint64(buf)
		name := buf[nameOff:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		buf = buf[reclen:]
		if ino == 0 || string(name) == "." || string(name) == ".." {
			continue
		}
		fn(name)
	}
}

// replaceFile renames old to new, replacing new. Unlike os.Rename it does not
// look at new first: the kernel refuses to put a file in place of a
// directory (EISDIR) all the same.
func replaceFile(old, new string) error {
	_, err := ignoringEINTR(func() (struct{}, error) { return struct{}{}, syscall.Rename(old, new) })
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}

// syncDir makes the directory entries created in dir durable: on Unix a
// link or rename reaches the disk only when its directory is synced.
func syncDir(dir string) error {
	fd, err := ignoringEINTR(func() (int, error) {
		return syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	})
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer syscall.Close(fd)
	if _, err := ignoringEINTR(func() (struct{}, error) { return struct{}{}, syscall.Fsync(fd) }); err != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: err}
	}
	return nil
}
