//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/symlinktest"
)

// TestPlantedSymlink: leaserun, run as root on a lease in a sticky
// world-writable directory (as /tmp is) where another user made PATH.d a
// symbolic link to a directory of root's, with fs.protected_symlinks off,
// creates, writes and removes nothing there: a run, a standby and status
// each exit 74 saying that they refused to follow the symbolic link. (The
// cases of PATH.d/tmp, a version and PATH are package lease's
// symlink_linux_test.go.)
func TestPlantedSymlink(t *testing.T) {
	symlinktest.Require(t)

	base, err := os.MkdirTemp("", "leaserun-symlink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	sticky, victim := filepath.Join(base, "shared"), filepath.Join(base, "victim")
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sticky, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	longAgo := time.Now().Add(-time.Hour)
	for _, name := range []string{"1", "255", "tmp-crashed"} {
		p := filepath.Join(victim, name)
		if err := os.WriteFile(p, []byte("the victim's "+name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, longAgo, longAgo); err != nil {
			t.Fatal(err)
		}
	}
	plant := exec.Command("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--",
		"ln", "-s", victim, filepath.Join(sticky, "job.lease.d"))
	if out, err := plant.CombinedOutput(); err != nil {
		t.Fatalf("planting the symlink as uid 65534: %v\n%s", err, out)
	}
	snapshot := func() string {
		var b strings.Builder
		err := filepath.WalkDir(victim, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "%s %v %d %q\n", p, fi.Mode(), fi.ModTime().UnixNano(), data)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	before := snapshot()

	lease := filepath.Join(sticky, "job.lease")
	marker := filepath.Join(base, "ran")
	for _, args := range [][]string{
		{"--lease", lease, "--", "touch", marker},
		{"--lease", lease, "--wait", "--wait-timeout", "2s", "--", "touch", marker},
		{"status", "--lease", lease},
	} {
		cmd := exec.Command(leaserunBin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if code != 74 || !strings.Contains(stderr.String(), "symbolic link") {
			t.Errorf("leaserun %q: exit %d (%v), stderr %q; want 74 and a message refusing the symbolic link", args, code, err, stderr.String())
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran")
	}
	if after := snapshot(); after != before {
		t.Errorf("leaserun changed the directory the planted symlink names:\nbefore:\n%safter:\n%s", before, after)
	}
}
