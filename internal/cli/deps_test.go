package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// The leaserun executable links none of what it hands to another
// executable: net/http (its server is the health server's, its client the
// AWS SDK's), the AWS SDK, etcd's client and gRPC. Each would cost every
// run at start-up, whether it is used or not.
func TestLeaserunLinksNoNetworkClientOrServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/leaserun/leaserun/cmd/leaserun").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"net/http", "github.com/aws/", "go.etcd.io/", "google.golang.org/grpc", "github.com/leaserun/leaserun/internal/health"} {
			if pkg == strings.TrimSuffix(banned, "/") || strings.HasPrefix(pkg, banned) {
				t.Errorf("cmd/leaserun links %s", pkg)
			}
		}
	}
}
