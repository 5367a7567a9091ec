//go:build linux

package integration

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/sshfsrig"
)

// TestSSHFSRaceTwoHosts: the race of TestRaceOneLease across two "hosts":
// one directory mounted twice over sshfs, where kernel file locks are not
// shared between the mounts and only what the server enforces (exclusive
// link, atomic rename) can keep two holders apart. The second host caches
// failed lookups for a moment (sshfsrig.NegativeCache), as many network
// filesystem clients do. Eight leaserun loops, half standing by and half
// not, split across both mounts, for about 8s: still no two children at
// once, epochs increasing, and every exit the child's status or 75.
func TestSSHFSRaceTwoHosts(t *testing.T) {
	rig := sshfsrig.StartHosts(t, "", sshfsrig.NegativeCache)
	e2eRace(t, []string{
		filepath.Join(rig.Mounts[0].Path, "race.lease"),
		filepath.Join(rig.Mounts[1].Path, "race.lease"),
	}, 8, 8*time.Second)
}
