//go:build linux

package integration

// --once-per, "leaserun release --epoch" and --max-runtime on the other
// stores: the same tests as on file leases (ops_test.go), through
// leaserun-s3 against a fake S3 server in a process of its own, and
// through leaserun-etcd against a real etcd.

import (
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/etcdtest"
)

// Four leaserun loops on one S3 lease run the command exactly once in a
// 2-second slot; status shows the slot and its exit status.
func TestS3OncePer(t *testing.T) {
	srv := startS3(t)
	opsOncePer(t, s3Env(), []string{srv.location("once.lease", "")}, 4, 2*time.Second, 1)
}

// A stale epoch is refused (exit 1) and the holder keeps running; the
// holder's epoch frees the S3 lease, and the holder exits 76.
func TestS3ReleaseEpoch(t *testing.T) {
	srv := startS3(t)
	opsReleaseEpoch(t, srv.location("release.lease", ""), s3Env())
}

// --max-runtime on S3: exit 124, and the lease released.
func TestS3MaxRuntime(t *testing.T) {
	srv := startS3(t)
	opsMaxRuntime(t, srv.location("maxruntime.lease", ""), s3Env())
}

// The same on etcd.
func TestEtcdOncePer(t *testing.T) {
	c := etcdCluster(t, etcdtest.Options{})
	opsOncePer(t, nil, []string{etcdKey(t, c)}, 4, 2*time.Second, 1)
}

func TestEtcdReleaseEpoch(t *testing.T) {
	c := etcdCluster(t, etcdtest.Options{})
	opsReleaseEpoch(t, etcdKey(t, c), nil)
}

func TestEtcdMaxRuntime(t *testing.T) {
	c := etcdCluster(t, etcdtest.Options{})
	opsMaxRuntime(t, etcdKey(t, c), nil)
}
