package supervisor

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/lease"
)

// TestReleaseLogSaysWhatHappened: the line release logs says what became of
// the lease: released; not released because another instance took it
// over; or not released because the write failed, so that it stays held
// until it expires, and when that is.
func TestReleaseLogSaysWhatHappened(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path string, l *lease.Lease)
		want  []string // in the one line logged
	}{
		{"released", func(*testing.T, string, *lease.Lease) {}, []string{"level=INFO", "msg=released"}},
		{"taken over", func(t *testing.T, path string, _ *lease.Lease) {
			if _, err := lease.Acquire(path, time.Hour, lease.WithClock(fakeclock.New(start.Add(2*time.Hour)))); err != nil {
				t.Fatal(err)
			}
		}, []string{"level=DEBUG", `msg="not released: another instance took the lease over"`}},
		{"write failed", func(t *testing.T, path string, _ *lease.Lease) {
			spoilTemp(t, path)
		}, []string{"level=WARN", `msg="not released: the lease stays held until it expires"`,
			"expires_at=" + start.Add(time.Hour).Format(time.RFC3339Nano), `err="liblease: releasing `}},
		{"read failed after a failed renewal", func(t *testing.T, path string, l *lease.Lease) {
			spoilTemp(t, path)
			if err := l.Renew(); err == nil {
				t.Fatal("Renew succeeded with a file where the temp directory belongs")
			}
			// Release first looks whether the renewal made its version:
			// with a file where the version directory belongs, it can't.
			if err := os.Rename(path+".d", path+".old"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".d", nil, 0o666); err != nil {
				t.Fatal(err)
			}
		}, []string{"level=WARN", `msg="not released: the lease stays held until it expires"`,
			"expires_at=" + start.Add(time.Hour).Format(time.RFC3339Nano), `err="liblease: releasing `}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lease")
			l, err := lease.Acquire(path, time.Hour, lease.WithClock(fakeclock.New(start)))
			if err != nil {
				t.Fatal(err)
			}
			tc.spoil(t, path, l)
			var buf bytes.Buffer
			release(l, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
			line := buf.String()
			if strings.Count(line, "\n") != 1 || strings.Contains(line, "renewing") {
				t.Errorf("logged %q, want one line, and none about renewing", line)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("logged %q, want %s in it", line, w)
				}
			}
		})
	}
}

// spoilTemp puts a file where the lease's temp directory belongs, so that
// every write fails.
func spoilTemp(t *testing.T, path string) {
	t.Helper()
	tmp := filepath.Join(path+".d", "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, nil, 0o666); err != nil {
		t.Fatal(err)
	}
}
