package lease

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// store is the on-disk protocol: versions in dir, the newest published to
// path. It holds no state of its own beyond the names, so any number of
// handles and processes can share one path.
//
// The invariants the protocol keeps (docs/DESIGN.md argues each):
//   - version files are immutable: each is created whole by an exclusive
//     link(2) and never written again;
//   - version n+1 is only ever linked by a writer that read version n as the
//     newest, so the highest version is the one true state;
//   - cleanup removes only versions below the writer's own, so the highest
//     version is never removed, and a stale writer that recreates an old,
//     removed name finds a higher version beside it and knows it lost.
type store struct {
	path string // the published record
	dir  string // path + ".d": the versions
}

// keepVersions is how many versions below the newest a writer leaves in
// place. Only the newest matters; the few below it spare readers a retry
// when they list just before a write.
const keepVersions = 4

// cleanupEvery spaces out the unlinks so renewals stay cheap: every this
// many versions, a writer removes what lies below keepVersions.
const cleanupEvery = 16

// staleTempAge is how old a temp file must be before any writer removes it.
// A temp file lives for the few operations of one write; one this old was
// left by a crash (or by a writer frozen so long that its write must fail).
// Its mtime is the file server's clock and the age is judged by ours, so the
// margin is generous: removing a live writer's temp file costs that writer
// one failed write, never safety.
const staleTempAge = 10 * time.Minute

// tempDir is the subdirectory of the version directory where writes in
// progress are made: not the version directory itself, where each temp file
// would wake every standby watching it.
const tempDir = "tmp"

// tempPrefix names the temp files that versions before tempDir made in the
// version directory itself; cleanup removes those left by a crash.
const tempPrefix = "tmp-"

func newStore(path string) *store {
	return &store{path: path, dir: path + ".d"}
}

// view is what one read of the store found.
type view struct {
	seq uint64  // the newest version; 0 when there is none
	rec *Record // its record; nil when there is none or it is unreadable
}

// listing is one directory read of the versions.
type listing struct {
	newest   uint64
	versions []uint64
	temps    []string // old-style temp files (tempPrefix)
}

// parseVersion accepts only canonical decimal names, so no version has two
// names ("7" and "07").
func parseVersion(name string) (uint64, bool) {
	n, err := strconv.ParseUint(name, 10, 64)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != name {
		return 0, false
	}
	return n, true
}

func (s *store) versionPath(n uint64) string {
	return filepath.Join(s.dir, strconv.FormatUint(n, 10))
}

// list reads the version directory. A missing directory is an empty lease.
func (s *store) list() (listing, error) {
	var l listing
	names, err := retryStale(func() ([]string, error) {
		f, err := os.Open(s.dir)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return f.Readdirnames(-1)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return l, s.checkMissing()
	}
	if err != nil {
		return l, err
	}
	for _, name := range names {
		if n, ok := parseVersion(name); ok {
			l.versions = append(l.versions, n)
			l.newest = max(l.newest, n)
		} else if strings.HasPrefix(name, tempPrefix) {
			l.temps = append(l.temps, name)
		}
	}
	return l, nil
}

// checkMissing tells a lease that was never written (fine) from a path that
// cannot hold one: a missing parent directory is an error, not "free".
func (s *store) checkMissing() error {
	parent := filepath.Dir(s.path)
	fi, err := os.Stat(parent)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "open", Path: parent, Err: errNotDir}
	}
	return nil
}

var (
	errNotDir = errors.New("not a directory")
	errIsDir  = errors.New("is a directory")
)

// checkPath refuses a path that is a directory: writing the lease there
// would fail only after the version was linked.
func (s *store) checkPath() error {
	fi, err := retryStale(func() (fs.FileInfo, error) { return os.Stat(s.path) })
	if err == nil && fi.IsDir() {
		return &fs.PathError{Op: "open", Path: s.path, Err: errIsDir}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// read returns the newest version and its record. It never returns a torn
// record: version files are immutable.
func (s *store) read() (view, error) {
	for {
		l, err := s.list()
		if err != nil || l.newest == 0 {
			return view{}, err
		}
		name := s.versionPath(l.newest)
		data, err := readFileBounded(name)
		if errors.Is(err, fs.ErrNotExist) {
			if _, lerr := os.Lstat(name); lerr == nil {
				// A name that exists but can't be opened (a dangling
				// symlink, not ours): unreadable, so free.
				return view{seq: l.newest}, nil
			}
			// A writer that got further removed it between our list and
			// our open; only non-newest versions are removed, so list again.
			continue
		}
		if err != nil {
			return view{}, err
		}
		rec, err := decodeRecord(data)
		if err != nil {
			rec = nil // unreadable: the lease is free at this version
		}
		return view{seq: l.newest, rec: rec}, nil
	}
}

// exists reports whether version n exists: a cheap look before a write
// that would lose.
func (s *store) exists(n uint64) bool {
	_, err := os.Lstat(s.versionPath(n))
	return err == nil
}

// outcome is what a put achieved.
type outcome int

const (
	lost       outcome = iota // someone else made version n
	won                       // version n is ours and was the newest
	superseded                // we linked n, but a higher version stood beside it
)

// put tries to make rec version n, which succeeds only if n-1 was the newest
// version and nobody else made n first. A write
// that linked n but found a higher version beside it is superseded if n was
// genuinely the next version and others built on it already (only a release
// may count that as done), and lost if n may be an old name reused from a
// stale read (Lemma 2 in docs/DESIGN.md). On any
// error the outcome is unknown, except that the record was not published.
//
// durable syncs the version directory, so that version n survives a power
// loss and no later acquisition can reuse its epoch; an acquisition needs
// that, a renewal does not. The record's bytes need no sync of their own: a
// version that comes back empty after a power loss is unreadable, and the
// next acquisition then takes epoch n+1, still above the lost one's
// (nextEpoch).
func (s *store) put(n uint64, rec *Record, durable bool) (outcome, error) {
	data := encodeRecord(rec)
	if len(data) > MaxRecordSize {
		// Readers would find it unreadable, hence free.
		return lost, errorf(ErrInvalid, "%s: record of %d bytes exceeds %d", s.path, len(data), MaxRecordSize)
	}
	tmp, err := s.writeTemp(data)
	if err != nil {
		return lost, err
	}
	defer func() {
		if tmp != "" {
			os.Remove(tmp)
		}
	}()

	// The compare-and-swap: link fails with EEXIST if version n exists.
	target := s.versionPath(n)
	if err := os.Link(tmp, target); err != nil {
		// Not every server says EEXIST: sftp-server reports a generic
		// failure, which sshfs turns into EPERM. Whatever the error, if the
		// target exists now, someone made it. (After EEXIST it may be gone
		// again, removed by a writer far ahead of us: lost all the same.)
		if _, serr := os.Lstat(target); serr != nil && !errors.Is(err, fs.ErrExist) {
			return lost, err
		}
		// Over NFS a retransmitted LINK whose first reply was lost answers
		// EEXIST although it succeeded: the version is ours if it holds
		// exactly our bytes (they include a nanosecond timestamp and our
		// InstanceID, so no one else writes them).
		if existing, rerr := readFileBounded(target); rerr != nil || !bytes.Equal(existing, data) {
			return lost, nil
		}
	}

	// Guard against reused names: if n was made, removed by cleanup and made
	// again by us from a stale read, a higher version stands beside it.
	l, err := s.list()
	if err != nil {
		return lost, err
	}
	if l.newest != n {
		// Name n can have been removed before our link only if some writer
		// made a version above n+keepVersions; with none, ours was n's
		// first and only creation, and others have built on it since.
		if l.newest <= n+keepVersions {
			return superseded, nil
		}
		return lost, nil
	}

	if durable {
		if err := syncDir(s.dir); err != nil {
			return won, err
		}
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return won, err
	}
	tmp = ""
	if n%cleanupEvery == 0 {
		s.cleanup(n, l)
	}
	return won, nil
}

// writeTemp writes data to a new temp file in the version directory's
// tempDir (the same filesystem as both link targets), creating the
// directories if needed.
func (s *store) writeTemp(data []byte) (string, error) {
	name := filepath.Join(s.dir, tempDir, uuid.NewString())
	// Read-only: PATH and the newest version share this inode, so writing
	// PATH in place would rewrite the truth; the mode stops that (for all but
	// root). Our own descriptor was opened for writing before the mode applies.
	const mode = 0o444
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.makeDir(); err != nil {
			return "", err
		}
		f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	}
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

func (s *store) makeDir() error {
	if err := s.checkMissing(); err != nil {
		return err
	}
	for _, dir := range []string{s.dir, filepath.Join(s.dir, tempDir)} {
		if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// cleanup removes versions well below n (which the caller just made newest)
// and temp files old enough to be left by a crash. It is best effort: a
// failure leaves litter, never an unsafe state.
func (s *store) cleanup(n uint64, l listing) {
	for _, v := range l.versions {
		if v+keepVersions < n {
			os.Remove(s.versionPath(v))
		}
	}
	removeStale(s.dir, l.temps)
	if f, err := os.Open(filepath.Join(s.dir, tempDir)); err == nil {
		names, _ := f.Readdirnames(-1)
		f.Close()
		removeStale(f.Name(), names)
	}
}

// removeStale removes the temp files names in dir that are old enough to
// have been left by a crash.
func removeStale(dir string, names []string) {
	for _, name := range names {
		p := filepath.Join(dir, name)
		if fi, err := os.Lstat(p); err == nil && time.Since(fi.ModTime()) > staleTempAge {
			os.Remove(p)
		}
	}
}

// previousEpoch is the epoch the next acquisition must exceed when the
// newest version can't tell: the published copy's, if any. It lets a user
// delete PATH.d without resetting epochs; deleting both resets them.
func (s *store) previousEpoch() uint64 {
	data, err := readFileBounded(s.path)
	if err != nil {
		return 0
	}
	rec, err := decodeRecord(data)
	if err != nil {
		return 0
	}
	return rec.Epoch
}

// nextEpoch is the epoch of an acquisition that replaces v. While PATH.d is
// intact every record the protocol writes has Epoch <= its version number
// (an acquisition adds one to both, a renewal only to the version), so when
// the newest record is unreadable, its version number + 1 exceeds every
// epoch before it; the published copy covers a PATH.d deleted by hand.
func (s *store) nextEpoch(v view) uint64 {
	if v.rec != nil {
		return v.rec.Epoch + 1
	}
	return max(v.seq+1, s.previousEpoch()+1)
}

func (s *store) String() string { return fmt.Sprintf("lease %s", s.path) }
