package s3store_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/leaserun/leaserun/internal/fakes3"
	"github.com/leaserun/leaserun/s3store"
)

// testSecret is the secret key the tests sign with: no error, log line or
// record may show it.
const testSecret = "leaserun-test-SECRET-4f1d"

// The tests reach only servers they start on loopback, with credentials
// of their own: nothing from this machine's AWS configuration, and never
// the instance metadata service.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AWS_") {
			os.Unsetenv(name)
		}
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "leaserun-test-key",
		"AWS_SECRET_ACCESS_KEY":       testSecret,
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		os.Setenv(k, v)
	}
	code := m.Run()
	if fakes3Dir != "" {
		os.RemoveAll(fakes3Dir)
	}
	os.Exit(code)
}

// bucket is the bucket every test server has.
const bucket = "leases"

// startServer starts a fake S3 for t.
func startServer(t testing.TB) *fakes3.Server {
	t.Helper()
	srv, err := fakes3.Start("127.0.0.1:0", bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

var keys atomic.Int64

// newKey returns a key no other test uses.
func newKey(prefix string) string {
	return fmt.Sprintf("%s/%d.lease", prefix, keys.Add(1))
}

// location is the location of key on srv's bucket.
func location(srv *fakes3.Server, key string) string {
	return "s3://" + bucket + "/" + key + "?endpoint=" + srv.URL
}

// keyOf returns the key of a location made by location.
func keyOf(t testing.TB, loc string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func open(t testing.TB, loc string, opts ...s3store.Option) *s3store.Store {
	t.Helper()
	st, err := s3store.Open(context.Background(), loc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
