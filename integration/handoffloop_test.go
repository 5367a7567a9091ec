//go:build linux

package integration

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestNoHandOffLoop: a command line whose lease could be read two ways
// (given twice, attached to -l, or a -l among the arguments of a command
// given without "--") ends, with the status of the lease kong keeps,
// rather than being handed between leaserun-etcd and leaserun-s3 for
// ever. Nothing answers at the locations: each run ends with exit 74.
func TestNoHandOffLoop(t *testing.T) {
	if err := etcdBin(); err != nil {
		t.Fatal(err)
	}
	if _, err := s3Built(); err != nil {
		t.Fatal(err)
	}
	const (
		etcdLoc = "etcd://127.0.0.1:1/k"
		s3Loc   = "s3://b/k?endpoint=http://127.0.0.1:1"
	)
	for _, tc := range []struct {
		env  string
		args []string
	}{
		{"", []string{"--lease", etcdLoc, "--lease", s3Loc, "--", "true"}},
		{"", []string{"--lease", s3Loc, "--lease", etcdLoc, "--", "true"}},
		{etcdLoc, []string{"-l" + s3Loc, "--", "true"}},
		{s3Loc, []string{"grep", "-l", etcdLoc, "/dev/null"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, leaserunBin, tc.args...)
		cmd.Env = append(append(os.Environ(), s3Env()...), "AWS_REGION=us-east-1", "ETCDCTL_DIAL_TIMEOUT=2s", "LEASERUN_LEASE="+tc.env)
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Errorf("LEASERUN_LEASE=%q leaserun %q still ran after a minute: handed on in a loop? (%s)", tc.env, tc.args, out)
			continue
		}
		if code := cmd.ProcessState.ExitCode(); code != 74 {
			t.Errorf("LEASERUN_LEASE=%q leaserun %q: exit %d (%v), want 74; output %s", tc.env, tc.args, code, err, out)
		}
	}
}
