package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A command that leaves a daemon behind, out of its process group (setsid),
// must not leave it running once leaserun has exited and released the lease.
func TestOrphanOutsideGroupIsKilled(t *testing.T) {
	marker := fmt.Sprintf("%06d", time.Now().UnixNano()%1000000) // sleep 3600.<marker> is valid
	started := filepath.Join(t.TempDir(), "started")
	script := fmt.Sprintf(`setsid sh -c 'echo $$ > %s; exec sleep 3600.%s' </dev/null >/dev/null 2>&1 &
while [ ! -s %s ]; do sleep 0.01; done`, started, marker, started)
	cmd := exec.Command(leaserunBin, "--lease", filepath.Join(t.TempDir(), "lease"), "--", "sh", "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("leaserun: %v\n%s", err, out)
	}
	data, err := os.ReadFile(started)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(data))
	// leaserun killed it before exiting; it may linger only as a zombie
	// (this container's PID 1 may not reap), whose cmdline is empty.
	if cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline"); err == nil && strings.Contains(string(cmdline), marker) {
		t.Fatalf("the setsid daemon (pid %s) outlived leaserun: %q", pid, cmdline)
	}
}
