package s3store_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/s3store"
)

func TestParseLocation(t *testing.T) {
	good := []struct {
		in, want string
		loc      s3store.Location
	}{
		{"s3://b/k", "s3://b/k", s3store.Location{Bucket: "b", Key: "k"}},
		{"S3://b/jobs/report.lease", "s3://b/jobs/report.lease", s3store.Location{Bucket: "b", Key: "jobs/report.lease"}},
		{"s3://b/a%20b", "s3://b/a%20b", s3store.Location{Bucket: "b", Key: "a b"}},
		{"s3://my.bucket/k?region=eu-west-1", "s3://my.bucket/k?region=eu-west-1", s3store.Location{Bucket: "my.bucket", Key: "k", Region: "eu-west-1"}},
		{"s3://b/k?path_style=false&endpoint=http://127.0.0.1:9000", "s3://b/k?endpoint=http://127.0.0.1:9000&path_style=false",
			s3store.Location{Bucket: "b", Key: "k", Endpoint: "http://127.0.0.1:9000"}},
		{"s3://b/k?endpoint=https%3A%2F%2Fminio.example%3A9000%2Fs3", "s3://b/k?endpoint=https://minio.example:9000/s3",
			s3store.Location{Bucket: "b", Key: "k", Endpoint: "https://minio.example:9000/s3"}},
	}
	for _, c := range good {
		loc, err := s3store.ParseLocation(c.in)
		if err != nil {
			t.Errorf("ParseLocation(%q): %v", c.in, err)
			continue
		}
		if loc.Bucket != c.loc.Bucket || loc.Key != c.loc.Key || loc.Region != c.loc.Region || loc.Endpoint != c.loc.Endpoint {
			t.Errorf("ParseLocation(%q) = %+v, want %+v", c.in, loc, c.loc)
		}
		if s := loc.String(); s != c.want {
			t.Errorf("ParseLocation(%q).String() = %q, want %q", c.in, s, c.want)
		}
		again, err := s3store.ParseLocation(loc.String())
		if err != nil || again.String() != loc.String() {
			t.Errorf("String %q does not parse back: %v", loc.String(), err)
		}
	}
	bad := map[string]string{
		"/var/lock/x":                          "not a URL",
		"gs://b/k":                             "unknown scheme",
		"etcd://h:2379/k":                      "unknown scheme",
		"s3:b/k":                               "malformed",
		"s3://b":                               "no key",
		"s3://b/":                              "no key",
		"s3:///k":                              "no bucket",
		"s3://b:9000/k":                        "no port",
		"s3://b/k#x":                           "fragment",
		"s3://b/k?regoin=x":                    "unknown parameter",
		"s3://b/k?region=":                     "not a region",
		"s3://b/k?region=a&region=b":           "given 2 times",
		"s3://b/k?path_style=maybe":            "true or false",
		"s3://b/k?endpoint=localhost:9000":     "endpoint",
		"s3://b/k?endpoint=ftp://h/":           "scheme",
		"s3://b/k?endpoint=http://u:hunter2@h": "credentials",
		"s3://AKIA:hunter2@b/k":                "credentials",
		"s3://AKIA:hunter2@b/k%zz":             "malformed",
		"s3://b/k?%zz":                         "malformed query",
	}
	for in, want := range bad {
		_, err := s3store.ParseLocation(in)
		if !errors.Is(err, s3store.ErrLocation) || !errors.Is(err, lease.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLocation(%q): %v, want ErrLocation saying %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseLocation(%q): the error shows the password: %v", in, err)
		}
	}
}

// The endpoint comes from the location, else from AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL; path style is the default when there is one.
func TestEndpointAndRegion(t *testing.T) {
	srv := startServer(t)
	key := newKey(t.Name())
	ctx := context.Background()

	st := open(t, "s3://"+bucket+"/"+key+"?region=eu-north-1")
	if region, endpoint, pathStyle := s3store.ClientSettings(st); region != "eu-north-1" || endpoint != "" || pathStyle {
		t.Errorf("AWS: region %q, endpoint %q, path style %v", region, endpoint, pathStyle)
	}
	st = open(t, location(srv, key)+"&path_style=false&region=r1")
	if region, endpoint, pathStyle := s3store.ClientSettings(st); region != "r1" || endpoint != srv.URL || pathStyle {
		t.Errorf("endpoint and path_style=false: region %q, endpoint %q, path style %v", region, endpoint, pathStyle)
	}
	if _, err := s3store.Open(ctx, "s3://"+bucket+"/"+key); !errors.Is(err, s3store.ErrLocation) || !strings.Contains(err.Error(), "no region") {
		t.Errorf("Open with no region and no endpoint: %v", err)
	}
	t.Setenv("AWS_REGION", "us-west-2")
	for _, env := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, srv.URL)
			st := open(t, "s3://"+bucket+"/"+key)
			if region, endpoint, pathStyle := s3store.ClientSettings(st); region != "us-west-2" || endpoint != srv.URL || !pathStyle {
				t.Errorf("region %q, endpoint %q, path style %v", region, endpoint, pathStyle)
			}
			l, err := lease.AcquireStore(st, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
			if st.String() != "s3://"+bucket+"/"+key {
				t.Errorf("String %q", st.String())
			}
		})
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://someone:hunter2@127.0.0.1:1")
	if _, err := s3store.Open(ctx, "s3://"+bucket+"/"+key); !errors.Is(err, s3store.ErrLocation) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open with credentials in AWS_ENDPOINT_URL_S3: %v", err)
	}
}

// No error, string or record shows the secret key.
func TestNoSecrets(t *testing.T) {
	srv := startServer(t)
	key := newKey(t.Name())
	var errs []error
	// A server that refuses everything, one that is gone, and one that is
	// fine.
	ft := newFaultTransport(func(*http.Request) fault { return fault{reply: 403} })
	st := open(t, location(srv, key), s3store.WithHTTPClient(ft.client()))
	_, err := st.Load(context.Background())
	errs = append(errs, err)
	_, err = lease.AcquireStore(st, time.Minute)
	errs = append(errs, err)
	gone := open(t, "s3://"+bucket+"/"+key+"?endpoint=http://127.0.0.1:1")
	_, err = lease.AcquireStore(gone, time.Minute)
	errs = append(errs, err)
	_, err = lease.ReadStore(context.Background(), gone)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("no error")
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Errorf("the error shows the secret key: %v", err)
		}
	}
	t.Log(errs)
	st = open(t, location(srv, key))
	l, err := lease.AcquireStore(st, time.Minute, lease.WithMeta(map[string]string{"a": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	data, meta, err := srv.Get(bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]string{string(data), st.String()}, mapStrings(meta)...) {
		if strings.Contains(s, testSecret) || strings.Contains(s, "leaserun-test-key") {
			t.Errorf("%q shows a credential", s)
		}
	}
}

func mapStrings(m map[string]string) []string {
	var s []string
	for k, v := range m {
		s = append(s, k, v)
	}
	return s
}

// Every Swap keeps the record's epoch in the object's metadata, and Load
// returns it as the Floor: an acquisition that replaces a damaged record
// whose metadata stayed (aws s3 cp --metadata leaserun-epoch=N, a newer
// record format, a tool that keeps metadata) goes above it. A hand edit
// that drops the metadata, or a delete, starts the epochs anew.
func TestFloor(t *testing.T) {
	srv := startServer(t)
	key := newKey(t.Name())
	st := open(t, location(srv, key))
	acquire := func() uint64 {
		t.Helper()
		l, err := lease.AcquireStore(st, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Renew(); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		_, meta, err := srv.Get(bucket, key)
		if err != nil {
			t.Fatal(err)
		}
		if meta["leaserun-epoch"] != strconv.FormatUint(l.Epoch(), 10) {
			t.Fatalf("metadata %v after epoch %d", meta, l.Epoch())
		}
		if v := load(t, st); v.Floor != l.Epoch() {
			t.Fatalf("Floor %d after epoch %d", v.Floor, l.Epoch())
		}
		return l.Epoch()
	}
	for want := uint64(1); want <= 3; want++ {
		if got := acquire(); got != want {
			t.Fatalf("epoch %d, want %d", got, want)
		}
	}
	if err := srv.Put(bucket, key, []byte("damaged"), map[string]string{"leaserun-epoch": "41"}); err != nil {
		t.Fatal(err)
	}
	if got := acquire(); got != 42 {
		t.Fatalf("epoch %d after a damaged record with the floor 41 in its metadata, want 42", got)
	}
	if err := srv.Put(bucket, key, []byte("damaged"), nil); err != nil {
		t.Fatal(err)
	}
	if got := acquire(); got != 1 {
		t.Fatalf("epoch %d after a damaged record without metadata, want 1 (documented)", got)
	}
	if err := srv.Delete(bucket, key); err != nil {
		t.Fatal(err)
	}
	if got := acquire(); got != 1 {
		t.Fatalf("epoch %d after the object was deleted, want 1 (documented)", got)
	}
}

// Every record the protocol writes is unique, so no two writes share an
// ETag where the ETag is the MD5 of the body (gofakes3, and S3 itself for
// a single-part upload without SSE-KMS): acquisitions by a fresh
// InstanceID, a holder's renewals and release by RenewedAt (nanoseconds),
// and the release by its TTL of 0.
func TestUniqueBodies(t *testing.T) {
	srv := startServer(t)
	st := open(t, location(srv, newKey(t.Name())))
	seen := map[lease.Revision]bool{}
	note := func() {
		t.Helper()
		v := load(t, st)
		if seen[v.Rev] {
			t.Fatalf("revision %q again: %s", v.Rev, v.Data)
		}
		seen[v.Rev] = true
	}
	for range 3 {
		l, err := lease.AcquireStore(st, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		note()
		for range 50 {
			if err := l.Renew(); err != nil {
				t.Fatal(err)
			}
			note()
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		note()
	}
}

// ReadStore reads the record that aws s3 cp s3://B/K - would show.
func TestRecordIsJSON(t *testing.T) {
	srv := startServer(t)
	key := newKey(t.Name())
	st := open(t, location(srv, key))
	l, err := lease.AcquireStore(st, time.Minute, lease.WithMeta(map[string]string{"endpoint": "10.0.0.7:8080"}))
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := srv.Get(bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), `{"instance_id":"`+l.InstanceID()+`"`) || !strings.Contains(string(data), `"meta":{"endpoint":"10.0.0.7:8080"}`) {
		t.Fatalf("the object holds %s", data)
	}
	status, err := lease.ReadStore(context.Background(), open(t, location(srv, key)))
	if err != nil || status.State != lease.StateHeld || status.Record.Epoch != l.Epoch() {
		t.Fatalf("ReadStore = %+v, %v", status, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}
