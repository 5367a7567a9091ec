// Package symlinktest is test support for the tests of planted symlinks:
// a second uid plants a symbolic link where a lease keeps its files, and
// root's own writes must not follow it.
package symlinktest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Require skips t unless it can stage such an attack: it runs as root,
// setpriv (util-linux) can act as a second uid, and the kernel's
// fs.protected_symlinks, without which the kernel itself refuses to follow
// a link planted in a sticky directory, is off or can be turned off; it
// is then turned off for t's length.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the symlinks are planted by a second uid, and root's own writes are what must not follow them")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux) to act as a second uid:", err)
	}
	const knob = "/proc/sys/fs/protected_symlinks"
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Skip("cannot read fs.protected_symlinks:", err)
	}
	if strings.TrimSpace(string(old)) != "0" {
		if err := os.WriteFile(knob, []byte("0"), 0o644); err != nil {
			t.Skip("cannot turn fs.protected_symlinks off, without which the kernel itself refuses to follow the planted symlinks:", err)
		}
		t.Cleanup(func() { os.WriteFile(knob, old, 0o644) })
	}
}
