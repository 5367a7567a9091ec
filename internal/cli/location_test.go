package cli

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestParseLease(t *testing.T) {
	for _, tc := range []struct {
		value        string
		path, scheme string
	}{
		{value: "/var/lock/job.lease", path: "/var/lock/job.lease"},
		{value: "job.lease", path: "job.lease"},
		{value: "./a:b", path: "./a:b"},
		{value: "dir/x://y", path: "dir/x://y"}, // no scheme: a path
		{value: "file:///var/lock/job.lease", path: filepath.FromSlash("/var/lock/job.lease")},
		{value: "file://localhost/var/lock/job.lease", path: filepath.FromSlash("/var/lock/job.lease")},
		{value: "s3://bucket/jobs/report.lease", scheme: "s3"},
		{value: "S3://bucket/key", scheme: "s3"},
		{value: "etcd://127.0.0.1:2379/key", scheme: "etcd"},
		{value: "etcds://a:2379,b:2379/key", scheme: "etcds"},
	} {
		at, err := parseLease(tc.value)
		if err != nil || at.path != tc.path || at.scheme != tc.scheme {
			t.Errorf("parseLease(%q) = %+v, %v; want path %q, scheme %q", tc.value, at, err, tc.path, tc.scheme)
		}
	}
	for _, value := range []string{
		"gs://bucket/key",                  // no store serves it
		"file://otherhost/var/lock/x",      // not this host
		"file://",                          // no path
		"file:///var/lock/x?mode=shared",   // nothing to ask
		"consul://127.0.0.1:8500/key",      // no store serves it
		"http://example.invalid/lease.txt", // no store serves it
	} {
		if at, err := parseLease(value); !errors.As(err, new(usageError)) {
			t.Errorf("parseLease(%q) = %+v, %v; want a usage error", value, at, err)
		}
	}
}

func TestEarlyLease(t *testing.T) {
	t.Setenv("LEASERUN_LEASE", "")
	for _, tc := range []struct {
		args  []string
		env   string
		value string // "" for none
	}{
		{args: []string{"--lease", "etcd://h/k", "--", "true"}, value: "etcd://h/k"},
		{args: []string{"-l", "etcd://h/k", "--", "true"}, value: "etcd://h/k"},
		{args: []string{"--ttl", "5s", "--lease=etcd://h/k", "--", "true"}, value: "etcd://h/k"},
		{args: []string{"status", "--lease", "s3://b/k"}, value: "s3://b/k"},
		{args: []string{"--lease", "a", "--lease", "b", "--", "true"}, value: "a"},
		{args: []string{"--", "true", "--lease", "etcd://h/k"}},
		{args: []string{"--", "true", "--lease", "etcd://h/k"}, env: "etcd://e/k", value: "etcd://e/k"},
		{args: []string{"--ttl", "5s", "--", "true"}, env: "etcd://e/k", value: "etcd://e/k"},
		{args: []string{"--lease", "etcd://h/k", "--", "true"}, env: "etcd://e/k", value: "etcd://h/k"},
		{args: []string{"--lease"}},
		{args: []string{"--lease", "etcd://h/k", "--help"}},
		{args: []string{"--help", "--lease", "etcd://h/k"}},
		{args: []string{"-h", "--lease", "etcd://h/k"}},
		{args: []string{"-wh", "--lease", "etcd://h/k"}},
		{args: []string{"--version", "--lease", "etcd://h/k"}},
		{args: []string{"--lease", "etcd://h/k", "--", "cmd", "--help"}, value: "etcd://h/k"},
	} {
		t.Setenv("LEASERUN_LEASE", tc.env)
		value, ok := earlyLease(tc.args)
		if value != tc.value || ok != (tc.value != "") {
			t.Errorf("earlyLease(%q) with LEASERUN_LEASE=%q = %q, %v; want %q", tc.args, tc.env, value, ok, tc.value)
		}
	}
}
