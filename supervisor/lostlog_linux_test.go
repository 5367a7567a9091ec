//go:build linux

package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leaserun/leaserun/lease"
)

// One event, one log line: the guard that stops and then kills a child
// ignoring TERM logs the loss once, not again when the run ends.
func TestLostLoggedOnce(t *testing.T) {
	cfg := testConfig(t)
	hangRenewals(t, &cfg)
	var buf syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	pidFile := filepath.Join(t.TempDir(), "pid")
	err := Run(context.Background(), cfg, sh(`trap '' TERM; echo $$ > `+pidFile+`; while :; do sleep 0.01; done`))
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Run = %v, want lost", err)
	}
	if n := strings.Count(buf.String(), `msg="lease lost"`); n != 1 {
		t.Errorf("%d \"lease lost\" lines for one loss:\n%s", n, buf.String())
	}
}
