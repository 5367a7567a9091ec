//go:build unix

package lease_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// permHelperEnv names, in the child process TestPermissionDenied starts when
// it runs as root, the directory the child's cases work in.
const permHelperEnv = "LEASE_TEST_PERMISSION_DIR"

// TestPermissionDenied: permission denied is an I/O error, never a free
// lease. Root ignores permission bits, so as root the checks run in a copy
// of the test binary started as the unprivileged user nobody (65534).
func TestPermissionDenied(t *testing.T) {
	base, err := os.MkdirTemp("", "lease-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if d != nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
		os.RemoveAll(base)
	})
	preparePermissionCases(t, base)

	if _, err := os.ReadDir(filepath.Join(base, "unlistable", "lease.d")); err != nil {
		runPermissionCases(t, base) // permission bits apply to us
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("permission bits are ignored for this non-root user (CAP_DAC_OVERRIDE?), and only root can switch to another user to check them")
	}

	// Root: rerun as nobody, from a copy of the test binary that nobody can
	// execute.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "lease.test")
	if err := copyFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPermissionDeniedHelper$", "-test.count=1", "-test.v")
	cmd.Dir = base
	cmd.Env = append(os.Environ(), permHelperEnv+"="+base)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		t.Logf("checked as user 65534:\n%s", out)
	case errors.As(err, &exitErr):
		t.Fatalf("the checks failed as user 65534: %v\n%s", err, out)
	default:
		t.Skipf("running as root, where permission bits are ignored, and cannot start the checks as user 65534 (nobody): %v", err)
	}
}

// TestPermissionDeniedHelper runs TestPermissionDenied's checks in the
// child process it starts; otherwise it does nothing.
func TestPermissionDeniedHelper(t *testing.T) {
	base := os.Getenv(permHelperEnv)
	if base == "" {
		t.Skip("the unprivileged half of TestPermissionDenied; runs only in the child process it starts")
	}
	if _, err := os.ReadDir(filepath.Join(base, "unlistable", "lease.d")); err == nil {
		t.Fatalf("running as uid %d, permission bits are still ignored", os.Geteuid())
	}
	runPermissionCases(t, base)
}

// preparePermissionCases lays out, under base (world-readable):
//
//	readonly/            no lease, and no write permission
//	unlistable/lease.d   an expired lease whose versions nobody can list
//	frozen/lease.d       a released lease whose versions nobody can add to
func preparePermissionCases(t *testing.T, base string) {
	t.Helper()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"readonly", "unlistable", "frozen"} {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if name != "readonly" {
			l := mustAcquireLease(t, filepath.Join(dir, "lease"), time.Minute, lease.WithClock(clockAt(0)))
			if name == "frozen" {
				if err := l.Release(); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(filepath.Join(dir, "lease"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, mode := range map[string]fs.FileMode{
		"readonly":           0o555,
		"unlistable/lease.d": 0o000,
		"frozen/lease.d":     0o555,
		"frozen":             0o555,
	} {
		if err := os.Chmod(filepath.Join(base, name), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func runPermissionCases(t *testing.T, base string) {
	clk := clockAt(time.Hour) // the held lease laid out expired an hour ago
	wantPermission := func(t *testing.T, op string, err error) {
		t.Helper()
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: %v, want a permission error", op, err)
		}
	}
	for _, name := range []string{"readonly", "unlistable", "frozen"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(base, name, "lease")
			l, err := lease.Acquire(path, time.Minute, lease.WithClock(clk))
			if l != nil {
				t.Errorf("Acquire returned a lease")
			}
			wantPermission(t, "Acquire", err)

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on a hang
			defer cancel()
			l, err = lease.Wait(ctx, path, time.Minute, lease.WithClock(clk))
			if l != nil {
				t.Errorf("Wait returned a lease")
			}
			wantPermission(t, "Wait", err)

			st, err := lease.Read(path, lease.WithClock(clk))
			switch name {
			case "unlistable":
				wantPermission(t, "Read", err)
			case "readonly":
				if err != nil || st.State != lease.StateFree {
					t.Errorf("Read of a readable directory without a lease: %s, %v; want free", st.State, err)
				}
			case "frozen":
				if err != nil || st.State != lease.StateReleased {
					t.Errorf("Read of a readable released lease: %s, %v; want released", st.State, err)
				}
			}
		})
	}
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
