package health

import (
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/supervisor"
)

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
