package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/lease"
)

// TestClockSkew: with --clock-skew (or LEASERUN_CLOCK_SKEW), status and a
// one-shot run count a record as held until its expires_at plus the skew, as
// when the holder's clock is behind this host's; without it, such a record
// is expired and taken over. A record renewed in this host's future is held
// either way. The records are written as by a holder whose clock reads
// other than this host's; the skew is far larger than the offsets, so the
// test does not depend on how fast it runs.
func TestClockSkew(t *testing.T) {
	const ttl = 10 * time.Second
	const skew = "5m"
	dir := t.TempDir()
	// Renewed by a holder whose clock is behind this host's: expired by a
	// minute, as this host sees it.
	expired := filepath.Join(dir, "expired.lease")
	writeRecordAt(t, expired, ttl, time.Now().Add(-ttl-time.Minute))
	// Renewed a minute in this host's future.
	future := filepath.Join(dir, "future.lease")
	writeRecordAt(t, future, ttl, time.Now().Add(time.Minute))

	for _, tc := range []struct {
		name  string
		path  string
		env   []string
		flags []string
		state string
		code  int
	}{
		{"expired", expired, nil, nil, "expired", 1},
		{"expired, --clock-skew", expired, nil, []string{"--clock-skew", skew}, "held", 0},
		{"expired, LEASERUN_CLOCK_SKEW", expired, []string{"LEASERUN_CLOCK_SKEW=" + skew}, nil, "held", 0},
		{"expired, empty LEASERUN_CLOCK_SKEW", expired, []string{"LEASERUN_CLOCK_SKEW="}, nil, "expired", 1},
		{"future", future, nil, nil, "held", 0},
		{"future, --clock-skew", future, nil, []string{"--clock-skew", skew}, "held", 0},
	} {
		t.Run("status/"+tc.name, func(t *testing.T) {
			args := append([]string{"status", "--lease", tc.path}, tc.flags...)
			code, stdout, stderr := runLeaserun(t, tc.env, args...)
			var got struct{ State string }
			if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != tc.code || got.State != tc.state || stderr != "" {
				t.Errorf("%v: status %d, stdout %q, stderr %q; want %d and state %s", args, code, stdout, stderr, tc.code, tc.state)
			}
		})
	}

	// A one-shot run: the skew keeps it from taking over; without, it does.
	args := []string{"--lease", expired, "--clock-skew", skew, "--", "true"}
	if code, _, stderr := runLeaserun(t, nil, args...); code != 75 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, expired) {
		t.Errorf("%v: status %d, stderr %q; want 75 and one line naming the lease", args, code, stderr)
	}
	args = []string{"--lease", expired, "--", "true"}
	if code, _, stderr := runLeaserun(t, nil, args...); code != 0 || stderr != "" {
		t.Errorf("%v: status %d, stderr %q; want 0: the lease has expired", args, code, stderr)
	}
	args = []string{"--lease", future, "--", "true"}
	if code, _, _ := runLeaserun(t, nil, args...); code != 75 {
		t.Errorf("%v: status %d; want 75: a record renewed in the future is held", args, code)
	}
}

// writeRecordAt writes a lease record at path as a holder whose clock read
// at when its lease was acquired, and leaves it there: the holder is gone.
func writeRecordAt(t *testing.T, path string, ttl time.Duration, at time.Time) {
	t.Helper()
	l, err := lease.Acquire(path, ttl, lease.WithClock(fakeclock.New(at)))
	if err != nil {
		t.Fatal(err)
	}
	if r := l.Record(); !r.RenewedAt.Equal(at.Round(0)) {
		t.Fatalf("the record was renewed at %v, want %v", r.RenewedAt, at)
	}
}

// runLeaserun runs the leaserun binary with args and env added to the
// environment (without the test's own LEASERUN_* variables), and returns its
// exit status, stdout and stderr.
func runLeaserun(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(leaserunBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEASERUN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%v: %v", args, err)
	}
	return code, out.String(), errb.String()
}
