package cli

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/supervisor"
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
	code, _, stderr := leaserun(t, "--lease", p, "--health-addr", ln.Addr().String(), "--", "true")
	if code != 74 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--health-addr") {
		t.Fatalf("--health-addr in use: %d %q; want 74 and one line naming the flag", code, stderr)
	}
	if st, _ := lease.Read(p); st.State != lease.StateFree {
		t.Fatalf("the lease was touched: %s", st.State)
	}
}

func TestFormatMetrics(t *testing.T) {
	s := formatMetrics(snapshotForTest())
	for _, want := range []string{
		"# TYPE leaserun_lease_held gauge\nleaserun_lease_held 1\n",
		"leaserun_lease_epoch 7\n",
		"leaserun_lease_deadline_seconds 2.5\n",
		"leaserun_waiting 0\n",
		"# TYPE leaserun_acquisitions_total counter\nleaserun_acquisitions_total 2\n",
		"leaserun_renewals_total 5\n",
		"leaserun_renewal_failures_total 1\n",
		"# TYPE leaserun_renewal_duration_seconds histogram\n",
		`leaserun_renewal_duration_seconds_bucket{le="0.0005"} 4` + "\n",
		`leaserun_renewal_duration_seconds_bucket{le="+Inf"} 6` + "\n",
		"leaserun_renewal_duration_seconds_sum 0.25\n",
		"leaserun_renewal_duration_seconds_count 6\n",
	} {
		if !strings.Contains(string(s), want) {
			t.Errorf("metrics lack %q:\n%s", want, s)
		}
	}
}

func snapshotForTest() supervisor.Snapshot {
	counts := make([]uint64, len(supervisor.RenewalBuckets))
	for i := range counts {
		counts[i] = 4
	}
	counts[len(counts)-1] = 6
	return supervisor.Snapshot{Held: true, Epoch: 7, StopIn: 2500 * time.Millisecond, Acquisitions: 2, Renewals: 5,
		RenewalFailures: 1, RenewalCounts: counts, RenewalCount: 6, RenewalSum: 250 * time.Millisecond}
}
