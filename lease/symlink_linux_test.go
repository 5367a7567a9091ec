//go:build linux

package lease_test

// Planted symlinks: run as root, the lease in a sticky world-writable
// directory (as /tmp is), where another user made PATH.d, PATH.d/tmp, a
// version or PATH a symbolic link to a directory or file of someone else's,
// with the kernel's fs.protected_symlinks off. The lease must create, write
// or unlink nothing outside PATH and PATH.d, and must fail with an I/O error
// that says why, never take the lease as free or held.

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/symlinktest"
	"github.com/leaserun/leaserun/lease"
)

// attackerID is the uid and gid that plant the symlinks: nobody's.
const attackerID = "65534"

// symlinkRig is a sticky world-writable directory for the lease, and a
// victim directory and file of root's beside it, outside the lease.
type symlinkRig struct {
	sticky     string // mode 01777, owned by root: where leases are made
	victim     string // a directory of root's, with files in it
	victimFile string // a file of root's
	exchange   string // a copy of the test binary, which the attacker runs
}

// newSymlinkRig skips unless the test runs as root and can act as a second
// uid (setpriv) with fs.protected_symlinks off, which it turns off for the
// test's length where it is on.
func newSymlinkRig(t *testing.T) *symlinkRig {
	t.Helper()
	symlinktest.Require(t)

	base, err := os.MkdirTemp("", "lease-symlink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	r := &symlinkRig{
		sticky:     filepath.Join(base, "shared"),
		victim:     filepath.Join(base, "victim"),
		victimFile: filepath.Join(base, "victim.conf"),
	}
	if err := os.Chmod(base, 0o755); err != nil { // the attacker must reach sticky
		t.Fatal(err)
	}
	if err := os.Mkdir(r.sticky, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(r.sticky, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(r.victim, 0o755); err != nil {
		t.Fatal(err)
	}
	// Files a lease would touch were it to take the victim directory for
	// its own: names of versions, of temp files old and new, and of the
	// standby line's gates, all old enough for cleanup.
	longAgo := time.Now().Add(-time.Hour)
	for _, name := range []string{"1", "2", "255", "tmp-crashed", "crashed"} {
		p := filepath.Join(r.victim, name)
		if err := os.WriteFile(p, []byte("the victim's "+name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, longAgo, longAgo); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(r.victimFile, []byte("the victim's configuration\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The test binary's own directory may be closed to the attacker.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	r.exchange = filepath.Join(base, "exchange")
	if err := os.WriteFile(r.exchange, self, 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSymlinkExchange is a helper command of the attacker's: it exchanges
// the two names its arguments give, atomically (renameat2 with
// RENAME_EXCHANGE). It does nothing unless started by the tests.
func TestSymlinkExchange(t *testing.T) {
	args := flag.Args()
	if len(args) != 2 {
		t.Skip("a helper command of the planted-symlink tests")
	}
	if err := unix.Renameat2(unix.AT_FDCWD, args[0], unix.AT_FDCWD, args[1], unix.RENAME_EXCHANGE); err != nil {
		t.Fatal(err)
	}
}

// plant runs a command as the attacker, in the sticky directory.
func (r *symlinkRig) plant(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("setpriv", append([]string{"--reuid", attackerID, "--regid", attackerID, "--clear-groups", "--"}, args...)...)
	cmd.Dir = r.sticky
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as uid %s: %q: %v\n%s", attackerID, args, err, out)
	}
}

// snapshot describes everything outside the lease: the victim directory and
// file, each entry's name, type, mode, size, mtime and content.
func (r *symlinkRig) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, root := range []string{r.victim, r.victimFile} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s %v %d %d", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
			if fi.Mode().IsRegular() {
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, " %x", sha256.Sum256(data))
			}
			b.WriteByte('\n')
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// untouched fails the test if anything outside the lease changed since
// before.
func (r *symlinkRig) untouched(t *testing.T, before, what string) {
	t.Helper()
	if after := r.snapshot(t); after != before {
		t.Errorf("%s changed what lies outside the lease:\nbefore:\n%safter:\n%s", what, before, after)
	}
}

// wantRefused fails the test unless err is an I/O error that says that a
// symbolic link was refused: not nil (the lease taken as free), not ErrHeld,
// not ErrLost.
func wantRefused(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error; want an I/O error refusing a symbolic link", what)
	case errors.Is(err, lease.ErrHeld), errors.Is(err, lease.ErrLost), errors.Is(err, lease.ErrInvalid):
		t.Errorf("%s: %v; want an I/O error, not held, lost or invalid", what, err)
	case !strings.Contains(err.Error(), "symbolic link"):
		t.Errorf("%s: %v; want it to say that a symbolic link was refused", what, err)
	}
}

// tryAll runs Acquire, Read and Wait on path and wants each refused; Read
// only if readRefused (it never looks at PATH.d/tmp).
func tryAll(t *testing.T, path string, readRefused bool) {
	t.Helper()
	l, err := lease.Acquire(path, time.Hour)
	if l != nil {
		l.Release()
	}
	wantRefused(t, "Acquire", err)
	if _, err = lease.Read(path); readRefused {
		wantRefused(t, "Read", err)
	} else if err != nil {
		t.Errorf("Read: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err = lease.Wait(ctx, path, time.Hour)
	if l != nil {
		l.Release()
	}
	wantRefused(t, "Wait", err)
}

// TestPlantedSymlinksBeforeAcquire: symlinks planted before anyone used the
// lease.
func TestPlantedSymlinksBeforeAcquire(t *testing.T) {
	r := newSymlinkRig(t)
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, base string)
	}{
		{"PATH.d to a directory", func(t *testing.T, base string) {
			r.plant(t, "ln", "-s", r.victim, base+".d")
		}},
		{"PATH.d relative to a directory", func(t *testing.T, base string) {
			r.plant(t, "ln", "-s", "../victim", base+".d")
		}},
		{"PATH.d/tmp to a directory", func(t *testing.T, base string) {
			// A version below a multiple of 256, so that a write would list
			// PATH.d/tmp and remove old files there.
			r.plant(t, "mkdir", "-m", "0777", base+".d")
			r.plant(t, "sh", "-c", "echo not a record > "+base+".d/255")
			r.plant(t, "ln", "-s", r.victim, base+".d/tmp")
		}},
		{"the newest version to a file", func(t *testing.T, base string) {
			r.plant(t, "mkdir", "-m", "0777", base+".d")
			r.plant(t, "ln", "-s", r.victimFile, base+".d/1")
		}},
		{"the newest version relative to a file in PATH.d", func(t *testing.T, base string) {
			r.plant(t, "mkdir", "-m", "0777", base+".d")
			r.plant(t, "sh", "-c", "echo not a record > "+base+".d/notes")
			r.plant(t, "ln", "-s", "notes", base+".d/1")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := strings.ReplaceAll(tc.name, " ", "-")
			base = strings.ReplaceAll(base, "/", "-")
			path := filepath.Join(r.sticky, base)
			tc.plant(t, base)
			before := r.snapshot(t)
			tryAll(t, path, !strings.Contains(tc.name, "tmp"))
			r.untouched(t, before, "Acquire, Read and Wait")
		})
	}
}

// TestPlantedSymlinkAtPath: a symlink at PATH is replaced by the write's
// rename, never followed: neither read for the epoch nor written through.
func TestPlantedSymlinkAtPath(t *testing.T) {
	r := newSymlinkRig(t)
	path := filepath.Join(r.sticky, "lease")
	r.plant(t, "ln", "-s", r.victimFile, "lease")
	before := r.snapshot(t)
	st, err := lease.Read(path)
	if err != nil || st.State != lease.StateFree || st.VersionsRemoved {
		t.Errorf("Read = %+v, %v; want free", st, err)
	}
	l, err := lease.Acquire(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("PATH after Acquire: %v, %v; want the record, replacing the symlink", fi, err)
	}
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	r.untouched(t, before, "Read, Acquire, Renew and Release")
}

// TestPlantedSymlinksWhileHeld: a holder whose PATH.d the attacker can
// write (the attacker made it, as its own, before root's first write), and
// which the attacker changes while the lease is held.
func TestPlantedSymlinksWhileHeld(t *testing.T) {
	r := newSymlinkRig(t)
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, base string)
	}{
		{"PATH.d/tmp replaced by a symlink to a directory", func(t *testing.T, base string) {
			r.plant(t, "mv", base+".d/tmp", base+".d/tmp.old")
			r.plant(t, "ln", "-s", r.victim, base+".d/tmp")
		}},
		{"PATH.d replaced by a symlink to a directory", func(t *testing.T, base string) {
			r.plant(t, "mv", base+".d", base+".d.old")
			r.plant(t, "ln", "-s", r.victim, base+".d")
		}},
		{"the next version planted as a symlink to a file", func(t *testing.T, base string) {
			// The holder wrote version 1; version 2 is its renewal's name.
			r.plant(t, "ln", "-s", r.victimFile, base+".d/2")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", "-"), "/", "-")
			path := filepath.Join(r.sticky, base)
			r.plant(t, "mkdir", "-m", "0777", base+".d")
			r.plant(t, "mkdir", "-m", "0777", base+".d/tmp")
			holder, err := lease.Acquire(path, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			tc.plant(t, base)
			before := r.snapshot(t)

			// Renew until a cleanup of PATH.d/tmp would have run (version
			// 256), or an error.
			for i := 0; i < 300 && err == nil; i++ {
				err = holder.Renew()
			}
			if !strings.Contains(tc.name, "next version") {
				wantRefused(t, "Renew", err)
			} else if err == nil || errors.Is(err, lease.ErrHeld) || errors.Is(err, lease.ErrInvalid) {
				// The name is taken: the renewal lost (ErrLost, to a
				// holder it cannot name) or was refused; never a success.
				t.Errorf("Renew onto a planted version: %v; want an error", err)
			}
			err = holder.Release()
			if err == nil {
				t.Error("Release: no error; want it refused, or lost")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if l, err := lease.Wait(ctx, path, time.Hour); l != nil || err == nil {
				t.Errorf("Wait: took the lease (%v, %v)", l != nil, err)
			}
			r.untouched(t, before, "Renew, Release and Wait")
		})
	}
}

// TestPlantedSymlinkWaiting: a standby already waiting when PATH.d is
// replaced by a symlink, and then a release made there by another writer,
// never writes into the directory the symlink names.
func TestPlantedSymlinkWaiting(t *testing.T) {
	r := newSymlinkRig(t)
	path := filepath.Join(r.sticky, "lease")
	r.plant(t, "mkdir", "-m", "0777", "lease.d")
	holder, err := lease.Acquire(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		l, err := lease.Wait(ctx, path, time.Hour, lease.WithPollInterval(20*time.Millisecond))
		if l != nil {
			l.Release()
			err = errors.New("took the lease")
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	before := r.snapshot(t)
	// At once: a lease whose PATH.d is missing is free, and the standby
	// would take it.
	r.plant(t, "ln", "-s", r.victim, "lease.d.new")
	r.plant(t, r.exchange, "-test.run=^TestSymlinkExchange$", "lease.d.new", "lease.d")
	select {
	case err := <-done:
		wantRefused(t, "Wait", err)
	case <-ctx.Done():
		t.Error("Wait did not end within 20s of PATH.d turning into a symlink")
	}
	r.untouched(t, before, "a waiting standby")
}
