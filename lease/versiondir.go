package lease

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// versionDir is the version directory PATH.d, opened for one call of the
// store without following a symlink at it. Every operation on a version or
// a temp file goes through its os.Root, which refuses a name that leads out
// of the directory, so that nothing planted there, nor a symlink at PATH.d
// or PATH.d/tmp, can lead a write elsewhere (docs/DESIGN.md, "Trust").
type versionDir struct {
	s    *fileStore
	root *os.Root // PATH.d
	tmp  *os.Root // PATH.d/tmp; nil until openTmp
}

// symlinkError is the error for a symbolic link where the lease keeps a
// directory or a record: someone who can write the lease's directory
// planted it, and following it could lead a write anywhere.
type symlinkError struct{ path string }

func (e *symlinkError) Error() string {
	return e.path + " is a symbolic link; refusing to follow it"
}

var (
	errNotDir     = errors.New("not a directory")
	errIsDir      = errors.New("is a directory")
	errNotRegular = errors.New("not a regular file") // where a record belongs: unreadable
	// errNoVersionDir: a holder's write found no version directory.
	errNoVersionDir = errors.New("the version directory is gone")
	// errStaleView: a version that listings kept showing and opens kept
	// failing to find.
	errStaleView = errors.New("listed as the newest version, but could not be opened")
	// errReplaced: a name that changed between a look at it and its open.
	errReplaced = replacedError{}
)

// replacedError is a name that changed between its lstat and its open. It
// counts as missing (fs.ErrNotExist): the reader looks again.
type replacedError struct{}

func (replacedError) Error() string        { return "replaced while it was being opened" }
func (replacedError) Is(target error) bool { return target == fs.ErrNotExist }

// openRoot opens the directory name as a Root without following a symlink
// at it: lstat looks at name without following one, open opens it (and
// would follow one), and the Root is used only if it is the directory that
// lstat saw, so that a symlink swapped in between is refused too. full is
// name's path, for errors.
func openRoot(name, full string, lstat func(string) (fs.FileInfo, error), open func(string) (*os.Root, error)) (*os.Root, error) {
	fi, err := lstat(name)
	switch {
	case err != nil:
		return nil, inDir(err, full, name)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, &symlinkError{full}
	case !fi.IsDir():
		return nil, &fs.PathError{Op: "open", Path: full, Err: errNotDir}
	}
	r, err := open(name)
	if err != nil {
		return nil, inDir(err, full, name)
	}
	if now, err := r.Stat("."); err != nil || !os.SameFile(fi, now) {
		r.Close()
		if err == nil {
			err = &fs.PathError{Op: "open", Path: full, Err: errReplaced}
		}
		return nil, err
	}
	return r, nil
}

// openDir opens the version directory. A missing one is an error wrapping
// fs.ErrNotExist; a symlink at it, a symlinkError.
func (s *fileStore) openDir() (*versionDir, error) {
	r, err := retryStale(func() (*os.Root, error) { return openRoot(s.dir, s.dir, os.Lstat, os.OpenRoot) })
	if err != nil {
		return nil, err
	}
	return &versionDir{s: s, root: r}, nil
}

// Close closes the directory.
func (d *versionDir) Close() {
	if d.tmp != nil {
		d.tmp.Close()
	}
	d.root.Close()
}

// openTmp opens tempDir in the version directory, creating it if need be.
func (d *versionDir) openTmp() error {
	open := func() (*os.Root, error) {
		return openRoot(tempDir, d.s.tmp, d.root.Lstat, d.root.OpenRoot)
	}
	r, err := open()
	if errors.Is(err, fs.ErrNotExist) {
		if err = d.root.Mkdir(tempDir, 0o777); err == nil || errors.Is(err, fs.ErrExist) {
			r, err = open()
		} else {
			err = inDir(err, d.s.tmp, tempDir)
		}
	}
	if err != nil {
		return err
	}
	d.tmp = r
	return nil
}

// inDir gives err, of an operation of a Root on name, the path full
// instead: a Root's errors name what it was given, relative to it.
func inDir(err error, full, name string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && (pe.Path == name || pe.Path == "") {
		pe.Path = full
	}
	return err
}

// names returns the names in the directory r, whose path is full.
func names(r *os.Root, full string) ([]string, error) {
	return retryStale(func() ([]string, error) {
		f, err := r.OpenFile(".", os.O_RDONLY|noPoll, 0)
		if err != nil {
			return nil, inDir(err, full, ".")
		}
		defer f.Close()
		names, err := f.Readdirnames(-1)
		if err != nil {
			return nil, inDir(err, full, ".")
		}
		return names, nil
	})
}

// readBounded reads at most MaxRecordSize+1 bytes of the file name, whose
// path is full: enough to tell an oversized file from a record without
// loading it. It never follows a symlink (a symlinkError), reads only a
// regular file (a directory is an I/O error, anything else errNotRegular:
// unreadable), and opens it without blocking, since a FIFO swapped in
// after the look would wait for a writer. A name that changed between the
// look and the open is errReplaced, which counts as missing.
func readBounded(name, full string, lstat func(string) (fs.FileInfo, error), open func(string, int, fs.FileMode) (*os.File, error)) ([]byte, error) {
	fi, err := lstat(name)
	switch {
	case err != nil:
		return nil, inDir(err, full, name)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, &symlinkError{full}
	case fi.IsDir(): // an I/O error, as a read would say: never free
		return nil, &fs.PathError{Op: "read", Path: full, Err: syscall.EISDIR}
	case !fi.Mode().IsRegular():
		return nil, &fs.PathError{Op: "open", Path: full, Err: errNotRegular}
	}
	f, err := open(name, os.O_RDONLY|noPoll, 0)
	if err != nil {
		return nil, inDir(err, full, name)
	}
	defer f.Close()
	if now, err := f.Stat(); err != nil {
		return nil, err
	} else if !os.SameFile(fi, now) {
		return nil, &fs.PathError{Op: "open", Path: full, Err: errReplaced}
	}
	return io.ReadAll(io.LimitReader(f, MaxRecordSize+1))
}

// read reads the version or other file name in the directory.
func (d *versionDir) read(name string) ([]byte, error) {
	return retryStale(func() ([]byte, error) {
		return readBounded(name, filepath.Join(d.s.dir, name), d.root.Lstat, d.root.OpenFile)
	})
}

// readPath reads the file at path, not following a symlink there.
func readPath(path string) ([]byte, error) {
	return retryStale(func() ([]byte, error) { return readBounded(path, path, os.Lstat, os.OpenFile) })
}

// noPoll is a flag of every open of the store's: O_NONBLOCK, which means
// nothing for a regular file or a directory, and which spares package os
// four fcntl calls per open on Linux (it would switch the descriptor to
// non-blocking mode for its poller, which refuses such files, and back).
// For a read it also keeps a FIFO swapped in after the look at the name
// from blocking the open.
const noPoll = syscall.O_NONBLOCK

// openGate returns the function with which the line of standbys opens its
// gates in the version directory dir, creating them if need be, through
// the directory's Root as every file of the lease is opened: a symlink at
// dir is never followed.
func openGate(dir string) func(name string) (*os.File, error) {
	return func(name string) (*os.File, error) {
		r, err := openRoot(dir, dir, os.Lstat, os.OpenRoot)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return r.OpenFile(name, os.O_RDWR|os.O_CREATE|noPoll, 0o666)
	}
}

// recordMode is the mode of every record file: read-only, since PATH and
// the newest version share an inode, so writing PATH in place would
// rewrite the truth; the mode stops that (for all but root). Windows turns
// a mode without write permission into the read-only attribute, which hard
// links share and which makes MoveFileEx refuse to replace the file: PATH
// could then never be replaced again. So records are writable there, and
// only the documentation says not to write PATH.
func recordMode() fs.FileMode {
	if runtime.GOOS == "windows" {
		return 0o666
	}
	return 0o444
}

// writeTemp writes data to the new file name in tempDir. If the write
// fails, it removes the file again.
func (d *versionDir) writeTemp(name string, data []byte) error {
	full := filepath.Join(d.s.tmp, name)
	f, err := d.tmp.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noPoll, recordMode())
	if err != nil {
		return inDir(err, full, name)
	}
	_, err = f.Write(data)
	// A network filesystem reports a failed write-back at close: never
	// ignore it.
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.tmp.Remove(name)
		return inDir(err, full, name)
	}
	return nil
}

// link makes the temp file temp the version named v: the compare-and-swap,
// which fails if v exists.
func (d *versionDir) link(temp, v string) error {
	err := d.root.Link(tempDir+"/"+temp, v)
	var le *os.LinkError
	if errors.As(err, &le) {
		le.Old, le.New = filepath.Join(d.s.tmp, temp), filepath.Join(d.s.dir, v)
	}
	return err
}

// sync makes the directory's new entries durable: on Unix a link reaches
// the disk only when its directory is synced. Windows can't open a
// directory for flushing, and NTFS journals its metadata.
func (d *versionDir) sync() error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := d.root.OpenFile(".", os.O_RDONLY|noPoll, 0)
	if err != nil {
		return inDir(err, d.s.dir, ".")
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return &fs.PathError{Op: "sync", Path: d.s.dir, Err: errors.Unwrap(err)}
	}
	return nil
}

// exists reports whether the file name is in the directory.
func (d *versionDir) exists(name string) bool {
	_, err := d.root.Lstat(name)
	return err == nil
}
