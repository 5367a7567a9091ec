package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// fileStore is the Store of a file lease: versions in dir, the newest
// published to path. It holds no state of its own beyond the names, so any
// number of handles and processes can share one path.
//
// The invariants the protocol keeps (docs/DESIGN.md argues each):
//   - version files are immutable: each is created whole by an exclusive
//     link(2) and never written again;
//   - version n+1 is only ever linked by a writer that read version n as the
//     newest, so the highest version is the one true state;
//   - cleanup removes only versions below the writer's own, so the highest
//     version is never removed, and a stale writer that recreates an old,
//     removed name finds a higher version beside it and knows it lost;
//
// Every operation on a version or a temp file goes through an os.Root on
// PATH.d, opened without following a symlink at it (openDir), so that no
// name planted in PATH.d, nor a symlink at PATH.d or PATH.d/tmp, can lead a
// write outside the lease's own files; PATH, outside PATH.d, is only ever
// read without following a symlink and replaced by a rename.
type fileStore struct {
	path string // the published record
	dir  string // path + ".d": the versions
	// vprefix is dir and a separator, which a version number completes to
	// its file's path; tmp is dir's tempDir.
	vprefix, tmp string
}

// keepVersions is how many versions below the newest a writer leaves in
// place. Only the newest matters; the few below it spare readers a retry
// when they list just before a write.
const keepVersions = 4

// cleanupEvery spaces out the unlinks so renewals stay cheap: every this
// many versions, a writer removes what lies below keepVersions.
const cleanupEvery = 16

// tempScanEvery spaces out the look for temp files left by crashes in
// tempDir, which costs a directory listing of its own: a crash leaves one
// file, and litter harms nothing.
const tempScanEvery = 16 * cleanupEvery

// staleTempAge is how old a temp file must be before any writer removes it.
// A temp file lives for the few operations of one write; one this old was
// left by a crash (or by a writer frozen so long that its write must fail).
// Its mtime is the file server's clock and the age is judged by ours, so the
// margin is generous: removing a live writer's temp file costs that writer
// one failed write, never safety.
const staleTempAge = 10 * time.Minute

// Test hooks, set only by tests that run no writes concurrently:
// testHookLink runs just before put's link, testHookList at every listing
// of the version directory, and testHookRead before readContext opens a
// version, which fails with its error if it returns one.
var (
	testHookLink, testHookList func()
	testHookRead               func(name string) error
)

// tempDir is the subdirectory of the version directory where writes in
// progress are made: not the version directory itself, where each temp file
// would wake every standby watching it.
const tempDir = "tmp"

// Files returns the Store of the file lease at path: the versions of its
// record in the directory PATH.d, each made by an exclusive link(2), and
// the newest published to PATH by a rename (see the package documentation
// and docs/DESIGN.md). It is a Watcher: Wait is woken by changes made on
// this host. Its calls ignore their context: a hung filesystem hangs them,
// as it hangs every other use of it.
//
// Its revisions are version numbers, and Value.Floor is the version number,
// or the epoch of the record at PATH if that is higher and the newest
// version holds no readable record (so that deleting PATH.d alone by
// mistake does not reset epochs).
func Files(path string) Store { return newFileStore(path) }

func newFileStore(path string) *fileStore {
	dir := path + ".d"
	return &fileStore{
		path:    path,
		dir:     dir,
		vprefix: filepath.Clean(dir) + string(filepath.Separator),
		tmp:     filepath.Join(dir, tempDir),
	}
}

// view is what one read of the store found.
type view struct {
	seq  uint64  // the newest version; 0 when there is none
	data []byte  // its bytes; nil when there is none or it can't be opened
	rec  *Record // its record; nil when there is none or it is unreadable
}

// listing is one directory read of the versions.
type listing struct {
	newest   uint64
	versions []uint64
}

// parseVersion accepts only canonical decimal names, so no version has two
// names ("7" and "07").
func parseVersion(name string) (uint64, bool) { return parseDecimal(name) }

// parseDecimal is parseVersion for a name as a string or as bytes: digits,
// no leading zero, not 0, at most math.MaxUint64.
func parseDecimal[S ~string | ~[]byte](name S) (uint64, bool) {
	if len(name) == 0 || name[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := range len(name) {
		c := name[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func (s *fileStore) versionPath(n uint64) string {
	return s.vprefix + strconv.FormatUint(n, 10)
}

// list reads the version directory.
func (d *versionDir) list() (listing, error) {
	if testHookList != nil {
		testHookList()
	}
	names, err := names(d.root, d.s.dir)
	if err != nil {
		return listing{}, err
	}
	var l listing
	for _, name := range names {
		if n, ok := parseDecimal(name); ok {
			l.versions = append(l.versions, n)
			l.newest = max(l.newest, n)
		}
	}
	return l, nil
}

// listMissing is the listing of a version directory that is missing: an
// empty lease, if checkMissing finds that the path can hold one.
func (s *fileStore) listMissing() error {
	if testHookList != nil {
		testHookList()
	}
	return s.checkMissing()
}

// checkMissing tells a lease that was never written (fine) from a path that
// cannot hold one: a missing parent directory is an error, not "free".
func (s *fileStore) checkMissing() error {
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

// checkPath refuses a path that is a directory: writing the lease there
// would fail only after the version was linked. A symlink there is
// replaced by the write, never followed.
func (s *fileStore) checkPath() error {
	fi, err := retryStale(func() (fs.FileInfo, error) { return os.Lstat(s.path) })
	if err == nil && fi.IsDir() {
		return &fs.PathError{Op: "open", Path: s.path, Err: errIsDir}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// readContext returns the newest version and its record. Only bytes that
// were read and are not a record make a version unreadable (view.rec nil:
// the lease is free at it). A name the listing showed that then can't be
// opened is a stale view, never a free lease: a writer far ahead may have
// removed it since (cleanup removes only versions below the newest), or
// this host's client answered the open from its cache of failed lookups,
// made before the version existed. Either way readContext lists again,
// pausing a little longer each time, for up to staleViewTimeout, and then
// gives up with an error wrapping errStaleView; it gives up sooner, with
// ctx.Err(), when ctx ends. A symlink at the name is an error at once
// (symlinkError): not something the protocol makes, and never followed.
func (s *fileStore) readContext(ctx context.Context) (view, error) {
	var stale staleRetry
	for {
		v, err := s.readOnce()
		if errors.Is(err, fs.ErrNotExist) && v.seq != 0 {
			if err := stale.pause(ctx, s.versionPath(v.seq), err); err != nil {
				return view{}, err
			}
			continue
		}
		return v, err
	}
}

// readOnce is one look of readContext: it lists the versions and reads the
// newest. An error wrapping fs.ErrNotExist with a view whose seq is set is a
// stale view of that version.
func (s *fileStore) readOnce() (view, error) {
	d, err := s.openDir()
	if errors.Is(err, fs.ErrNotExist) {
		return view{}, s.listMissing()
	}
	if err != nil {
		return view{}, err
	}
	defer d.Close()
	l, err := d.list()
	if err != nil || l.newest == 0 {
		return view{}, err
	}
	name := strconv.FormatUint(l.newest, 10)
	var data []byte
	if testHookRead != nil {
		err = testHookRead(s.versionPath(l.newest))
	}
	if err == nil {
		data, err = d.read(name)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return view{seq: l.newest}, err
	case errors.Is(err, errNotRegular):
		return view{seq: l.newest}, nil // a FIFO, a device: unreadable, so free
	case err != nil:
		return view{}, err
	}
	rec, err := decodeRecord(data)
	if err != nil {
		rec = nil // unreadable: the lease is free at this version
	}
	return view{seq: l.newest, data: data, rec: rec}, nil
}

// staleViewTimeout bounds how long readContext keeps looking again at a
// version that its listing shows but that can't be opened. It is longer
// than the caches of failed lookups that clients keep by default (the
// Windows SMB client's file-not-found cache keeps an entry for 5s), so that
// only a view that will not resolve, such as a server that lists a file it
// can't open, becomes an error.
var staleViewTimeout = 10 * time.Second

// staleViewPause is the first pause before a stale view is looked at again,
// and staleViewMaxPause the longest: each pause doubles the one before, so
// that a cache entry that lives for milliseconds costs a few quick retries,
// and one that lives for seconds costs a few listings a second, not a spin
// on the server.
const (
	staleViewPause    = time.Millisecond
	staleViewMaxPause = 100 * time.Millisecond
)

// staleRetry paces readContext's retries of a stale view. Its pauses run on
// the real clock, as they pace reads of the filesystem, not the lease.
type staleRetry struct {
	since time.Time // the first stale view; zero before it
	next  time.Duration
}

// pause waits before the next look, or returns an error if the stale view
// has lasted staleViewTimeout, or ctx ended. name and err are the version
// that could not be opened and why.
func (r *staleRetry) pause(ctx context.Context, name string, err error) error {
	if r.since.IsZero() {
		r.since, r.next = time.Now(), staleViewPause
	}
	if time.Since(r.since) >= staleViewTimeout {
		return fmt.Errorf("liblease: %s: %w for %v (%v)", name, errStaleView, staleViewTimeout, err)
	}
	t := time.NewTimer(r.next)
	defer t.Stop()
	r.next = min(2*r.next, staleViewMaxPause)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// exists reports whether version n exists: a cheap look before a write
// that would lose, or after one that may have reused a name. A client's
// cache of failed lookups can make it report false for a version that
// exists: it is never a reason to count a write as won.
func (s *fileStore) exists(n uint64) bool {
	d, err := s.openDir()
	if err != nil {
		return false
	}
	defer d.Close()
	return d.exists(strconv.FormatUint(n, 10))
}

// listed reports whether a listing of the version directory shows version
// n, which no cached failed lookup can hide.
func (d *versionDir) listed(n uint64) bool {
	l, err := d.list()
	return err == nil && slices.Contains(l.versions, n)
}

// outcome is what a put achieved.
type outcome int

const (
	lost       outcome = iota // someone else made version n
	won                       // version n is ours and was the newest
	superseded                // we linked n, but a higher version stood beside it
	// removed: a holder's version n-1 is gone and nothing stands above n,
	// or PATH.d is gone: the lease's files were removed or replaced by
	// hand. The write is undone.
	removed
)

// put tries to make data, an encoded record, version n, which succeeds only
// if n-1 was the newest version and nobody else made n first. A write
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
//
// holder is set for a holder's renewal or release, which replaces version
// n-1, its own: it never creates the version directory, and finds the
// lease's files removed when n-1 is gone with nothing above n.
func (s *fileStore) put(n uint64, data []byte, durable, holder bool) (outcome, error) {
	if len(data) > MaxRecordSize {
		// Readers would find it unreadable, hence free.
		return lost, errorf(ErrInvalid, "%s: record of %d bytes exceeds %d", s.path, len(data), MaxRecordSize)
	}
	d, err := s.openForWrite(!holder)
	if errors.Is(err, errNoVersionDir) {
		return removed, nil
	}
	if err != nil {
		return lost, err
	}
	defer d.Close()
	tmp := tempName()
	if err := d.writeTemp(tmp, data); err != nil {
		return lost, err
	}
	defer func() {
		if tmp != "" {
			d.tmp.Remove(tmp)
		}
	}()

	// The compare-and-swap: link fails with EEXIST if version n exists.
	target := strconv.FormatUint(n, 10)
	if testHookLink != nil {
		testHookLink()
	}
	err = d.link(tmp, target)
	if err != nil {
		// Not every server says EEXIST: sftp-server reports a generic
		// failure, which sshfs turns into EPERM. Whatever the error, if the
		// target exists now, someone made it. (After EEXIST it may be gone
		// again, removed by a writer far ahead of us: lost all the same.)
		// A client that caches failed lookups can answer the look at the
		// target from that cache, made before the target existed (and then
		// the server, not the client, refused the link): a listing shows
		// the name all the same.
		if !errors.Is(err, fs.ErrExist) && !d.exists(target) && !d.listed(n) {
			return lost, err
		}
		// Over NFS a retransmitted LINK whose first reply was lost answers
		// EEXIST although it succeeded: the version is ours if it holds
		// exactly our bytes (they include a nanosecond timestamp and our
		// InstanceID, so no one else writes them).
		if existing, rerr := d.read(target); rerr != nil || !bytes.Equal(existing, data) {
			return lost, nil
		}
	}

	// Guard against reused names: if n was made, removed by cleanup and made
	// again by us from a stale read, a higher version stands beside it.
	l, err := d.list()
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
	if holder && !slices.Contains(l.versions, n-1) {
		// Cleanup never removes the version below the newest, so the
		// holder's own version n-1 was removed by hand, or PATH.d replaced
		// by one that another acquisition started anew. Take our version
		// out again (our link made it and nothing stands above it), so as
		// to leave that state as we found it.
		d.root.Remove(target)
		return removed, nil
	}

	if durable {
		if err := d.sync(); err != nil {
			return won, err
		}
	}
	if err := d.publish(tmp, s.path); err != nil {
		return won, err
	}
	tmp = ""
	if n%cleanupEvery == 0 {
		d.cleanup(n, l)
	}
	return won, nil
}

// openForWrite opens the version directory and its tempDir for a write,
// creating tempDir if need be, and the version directory too if mayCreate.
// A holder's write may not create the version directory: if it is gone,
// the lease's files were removed, and openForWrite returns
// errNoVersionDir.
func (s *fileStore) openForWrite(mayCreate bool) (*versionDir, error) {
	d, err := s.openDir()
	if errors.Is(err, fs.ErrNotExist) {
		if !mayCreate {
			return nil, errNoVersionDir
		}
		if err := s.checkMissing(); err != nil {
			return nil, err
		}
		// mkdir never follows a symlink at its name: one there is EEXIST,
		// and openDir refuses it.
		if err := os.Mkdir(s.dir, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		d, err = s.openDir()
	}
	if err != nil {
		return nil, err
	}
	if err := d.openTmp(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// tempName returns a name no other write uses: a random UUID.
func tempName() string { return uuid.NewString() }

// cleanup removes versions well below n (which the caller just made newest)
// and, every tempScanEvery versions, temp files in tempDir old enough to
// be left by a crash. It is best effort: a failure leaves litter, never an unsafe state. It
// removes versions in ascending order, so that a version is gone only once
// those below it are: put relies on that to notice a reused name cheaply.
func (d *versionDir) cleanup(n uint64, l listing) {
	slices.Sort(l.versions)
	for _, v := range l.versions {
		if v+keepVersions < n {
			d.root.Remove(strconv.FormatUint(v, 10))
		}
	}
	if n%tempScanEvery != 0 {
		return
	}
	if names, err := names(d.tmp, d.s.tmp); err == nil {
		removeStale(d.tmp, names)
	}
}

// removeStale removes the temp files names in the directory r that are old
// enough to have been left by a crash.
func removeStale(r *os.Root, names []string) {
	for _, name := range names {
		if fi, err := r.Lstat(name); err == nil && time.Since(fi.ModTime()) > staleTempAge {
			r.Remove(name)
		}
	}
}

// previousEpoch is the epoch the next acquisition must exceed when the
// newest version can't tell: the published copy's, if any. It lets a user
// delete PATH.d without resetting epochs; deleting both resets them.
func (s *fileStore) previousEpoch() uint64 {
	if rec := s.published(); rec != nil {
		return rec.Epoch
	}
	return 0
}

// published is the record of the published copy at path; nil if there is
// none or it can't be read.
func (s *fileStore) published() *Record {
	data, err := readPath(s.path)
	if err != nil {
		return nil
	}
	rec, err := decodeRecord(data)
	if err != nil {
		return nil
	}
	return rec
}

func (s *fileStore) String() string { return s.path }

func (s *fileStore) resetHint() string {
	return fmt.Sprintf("remove %s and %s to reset", s.path, s.dir)
}

// rev is the Revision of version n.
func rev(n uint64) Revision {
	if n == 0 {
		return ""
	}
	return Revision(strconv.FormatUint(n, 10))
}

// exhausted refuses to write after version math.MaxUint64: there is no
// number left.
func (s *fileStore) exhausted(v Value) error {
	if n, _ := parseDecimal(v.Rev); n == math.MaxUint64 {
		return errorf(ErrExhausted, "%s: no version numbers left after %d; %s", s.path, n, s.resetHint())
	}
	return nil
}

// Load reads the newest version. Its Floor is the version number; when the
// version holds no readable record, also the epoch of the published copy,
// if higher: while PATH.d is intact every record the protocol writes has
// Epoch <= its version number (an acquisition adds one to both, a renewal
// only to the version), so the version number bounds every epoch before
// it; the published copy covers a PATH.d deleted by hand.
func (s *fileStore) Load(ctx context.Context) (Value, error) {
	if s.path == "" {
		return Value{}, errEmptyPath
	}
	if err := s.checkPath(); err != nil {
		return Value{}, err
	}
	v, err := s.readContext(ctx)
	if err != nil {
		return Value{}, err
	}
	floor := v.seq
	if v.rec == nil {
		floor = max(floor, s.previousEpoch())
	}
	return Value{Rev: rev(v.seq), Data: v.data, Floor: floor}, nil
}

// Swap makes data the version after old. An outcome put reports as
// superseded (linked, but others built on it already) is a success: the
// write replaced exactly old. One it reports as removed (a holder's write
// found its own version, or PATH.d, gone with nothing above it) wraps
// ErrRemoved.
func (s *fileStore) Swap(ctx context.Context, old Revision, data []byte, w Write) (Revision, error) {
	if s.path == "" {
		return "", errEmptyPath
	}
	var n uint64
	if old != "" {
		var ok bool
		if n, ok = parseDecimal(old); !ok {
			return "", errorf(ErrInvalid, "%s: %q is not a version", s.path, old)
		}
	}
	if err := s.exhausted(Value{Rev: old}); err != nil {
		return "", err
	}
	out, err := s.put(n+1, data, w.Durable, old != "" && !w.Durable)
	if err != nil {
		return "", err
	}
	switch out {
	case lost:
		return "", fmt.Errorf("%w: %s: version %d was made by another writer", ErrConflict, s.path, n+1)
	case removed:
		return "", s.removedError(n)
	}
	return rev(n + 1), nil
}

// removedError wraps ErrRemoved: version n, a holder's, is gone.
func (s *fileStore) removedError(n uint64) error {
	return fmt.Errorf("%w: its version %s is gone", ErrRemoved, s.versionPath(n))
}

// gone is the look that a release takes first: a released record frees
// the lease to whoever reads it, so the handle's version at rev must still
// be there. If cleanup removed it, others have built on it (an error
// wrapping ErrConflict); if nothing stands above it, the lease's files
// were removed or replaced by hand (ErrRemoved). A listing confirms what a
// look at the name says, which a client's cache of failed lookups can
// answer wrongly.
func (s *fileStore) gone(r Revision) error {
	n, _ := parseDecimal(r)
	d, err := s.openDir()
	if errors.Is(err, fs.ErrNotExist) {
		return s.removedError(n)
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if d.exists(string(r)) {
		return nil
	}
	l, err := d.list()
	if err != nil {
		return err
	}
	switch {
	case slices.Contains(l.versions, n):
		return nil
	case l.newest > n:
		return fmt.Errorf("%w: %s: version %d is gone, below %d", ErrConflict, s.path, n, l.newest)
	}
	return s.removedError(n)
}

// records names what keeps the lease, in messages.
func (s *fileStore) records() string { return "the lease's files" }

// versionsRemoved returns the published copy's record when it holds a later
// acquisition (a higher epoch) than the newest version v can hold, or
// PATH.d holds no version at all: the versions were removed or replaced by
// hand since the copy was written.
func (s *fileStore) versionsRemoved(v Value, rec *Record) *Record {
	pub := s.published()
	if pub == nil {
		return nil
	}
	// The highest epoch the versions can hold: the newest record's, or,
	// when it is unreadable, its version number (every record the protocol
	// writes has Epoch <= its version number while PATH.d is intact).
	newest, _ := parseDecimal(v.Rev)
	if rec != nil {
		newest = rec.Epoch
	}
	if pub.Epoch > newest {
		return pub
	}
	return nil
}
