package cli

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/health"
	"github.com/leaserun/leaserun/lease"
)

func TestReleaseCommand(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lease")
	first, err := lease.Acquire(p, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	first.Release()
	l, err := lease.Acquire(p, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	epoch := strconv.FormatUint(l.Epoch(), 10)

	code, stdout, stderr := leaserun(t, "release", "--lease", p, "--epoch", "1")
	if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, p) || !strings.Contains(stderr, "held by "+l.InstanceID()) {
		t.Fatalf("release of a stale epoch: %d %q %q; want 1 and one line naming the lease and the holder", code, stdout, stderr)
	}
	if st, _ := lease.Read(p); st.State != lease.StateHeld || st.Record.InstanceID != l.InstanceID() {
		t.Fatalf("a stale release changed the lease: %+v", st)
	}
	code, _, stderr = leaserun(t, "release", "--lease", p, "--epoch", epoch)
	if code != 0 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "released epoch "+epoch) || !strings.Contains(stderr, p) {
		t.Fatalf("release at the epoch: %d %q", code, stderr)
	}
	if st, _ := lease.Read(p); st.State != lease.StateReleased || st.Record.Epoch != l.Epoch() {
		t.Fatalf("after release: %+v", st)
	}
	code, _, stderr = leaserun(t, "release", "--lease", p, "--epoch", epoch)
	if code != 0 || !strings.Contains(stderr, "released already") {
		t.Fatalf("release again: %d %q", code, stderr)
	}
	code, _, stderr = leaserun(t, "release", "--lease", filepath.Join(p, "under-a-file"), "--epoch", "1")
	if code != 74 || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("release of a lease that can't be read: %d %q; want 74", code, stderr)
	}
}

// A --health-addr that can't be listened on is exit 74, before anything
// else happens, with one line naming the flag.
func TestHealthAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := filepath.Join(t.TempDir(), "lease")
	var errb bytes.Buffer
	code := Main([]string{"--lease", p, "--health-addr", ln.Addr().String(), "--", "true"}, io.Discard, &errb, WithHealth(health.Listen))
	stderr := errb.String()
	if code != 74 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--health-addr") {
		t.Fatalf("--health-addr in use: %d %q; want 74 and one line naming the flag", code, stderr)
	}
	if st, _ := lease.Read(p); st.State != lease.StateFree {
		t.Fatalf("the lease was touched: %s", st.State)
	}
}

// An executable without the health server hands a run with --health-addr
// (the flag or LEASERUN_HEALTH_ADDR) of a file lease to leaserun-http;
// without it, it says what to install (exit 74) before touching the lease.
func TestHealthAddrWithoutHealthServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	p := filepath.Join(t.TempDir(), "lease")
	for _, tc := range []struct {
		env  string
		args []string
	}{
		{"", []string{"--lease", p, "--health-addr", ":0", "--", "true"}},
		{":0", []string{"--lease", p, "--", "true"}},
	} {
		t.Setenv("LEASERUN_HEALTH_ADDR", tc.env)
		code, stdout, stderr := leaserun(t, tc.args...)
		if code != 74 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--health-addr :0") ||
			!strings.Contains(stderr, "leaserun-http") || !strings.Contains(stderr, "go install github.com/leaserun/leaserun/cmd/leaserun-http@latest") {
			t.Errorf("LEASERUN_HEALTH_ADDR=%q leaserun %q without leaserun-http: %d %q %q; want 74 and one line naming leaserun-http",
				tc.env, tc.args, code, stdout, stderr)
		}
		if st, _ := lease.Read(p); st.State != lease.StateFree {
			t.Fatalf("the lease was touched: %s", st.State)
		}
	}
	// A malformed address is still a usage error, found here.
	if code, _, stderr := leaserun(t, "--lease", p, "--health-addr", "8080", "--", "true"); code != 64 || !strings.Contains(stderr, "--health-addr") {
		t.Errorf("--health-addr 8080: %d %q; want 64", code, stderr)
	}
	// So is a missing command, --health-addr or not.
	if code, _, stderr := leaserun(t, "--lease", p, "--health-addr", ":0"); code != 64 || !strings.Contains(stderr, "no command") {
		t.Errorf("--health-addr without a command: %d %q; want 64", code, stderr)
	}
}
