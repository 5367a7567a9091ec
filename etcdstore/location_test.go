package etcdstore

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseLocation(t *testing.T) {
	good := []struct {
		loc       string
		tls       bool
		endpoints []string
		key       string
	}{
		{"etcd://127.0.0.1:2379/leases/job", false, []string{"127.0.0.1:2379"}, "leases/job"},
		{"etcds://a:1,b:2,c:3/k", true, []string{"a:1", "b:2", "c:3"}, "k"},
		{"etcd://host/k", false, []string{"host:2379"}, "k"},
		{"etcd://[::1]:2379,[::1]/k", false, []string{"[::1]:2379", "[::1]:2379"}, "k"},
		{"etcd://h:2379//registry/leases/x", false, []string{"h:2379"}, "/registry/leases/x"},
		{"etcd://h:2379/a%20b%3Fc%23d%2F", false, []string{"h:2379"}, "a b?c#d/"},
	}
	for _, g := range good {
		l, err := parseLocation(g.loc)
		if err != nil {
			t.Errorf("parseLocation(%q): %v", g.loc, err)
			continue
		}
		if l.tls != g.tls || !slices.Equal(l.endpoints, g.endpoints) || l.key != g.key {
			t.Errorf("parseLocation(%q) = %+v, want tls %v, endpoints %q, key %q", g.loc, *l, g.tls, g.endpoints, g.key)
		}
	}
	bad := []struct{ loc, says string }{
		{"/var/lock/x", "want etcd://"},
		{"http://h:2379/k", "scheme"},
		{"ETCD://h:2379/k", "scheme"},
		{"etcd://h:2379", "no key"},
		{"etcd://h:2379/", "no key"},
		{"etcd:///k", "no endpoint"},
		{"etcd://h:2379,/k", "endpoint"},
		{"etcd://h:x/k", "port"},
		{"etcd://h:0/k", "port"},
		{"etcd://h:70000/k", "port"},
		{"etcd://h:/k", "endpoint"},
		{"etcd://h:2379/k?dial_timeout=1s", "query"},
		{"etcd://h:2379/k#f", "query or fragment"},
		{"etcd://h:2379/%zz", "percent"},
		{"etcd://root:s3cret@h:2379/k", "ETCDCTL_USER"},
		{"etcds://a:s3cret@b:c@h:2379/k", "ETCDCTL_USER"},
	}
	for _, b := range bad {
		_, err := parseLocation(b.loc)
		if !errors.Is(err, ErrLocation) || !strings.Contains(err.Error(), b.says) {
			t.Errorf("parseLocation(%q): %v; want ErrLocation saying %q", b.loc, err, b.says)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("parseLocation(%q): the error shows the password: %v", b.loc, err)
		}
	}
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSettings(t *testing.T) {
	plain, _ := parseLocation("etcd://h/k")
	tlsLoc, _ := parseLocation("etcds://h/k")
	s, err := readSettings(plain, env(nil))
	if err != nil || s.dialTimeout != DefaultDialTimeout || s.username != "" || s.tls != nil {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	s, err = readSettings(plain, env(map[string]string{"ETCDCTL_DIAL_TIMEOUT": "750ms", "ETCDCTL_USER": "lr:pa:ss"}))
	if err != nil || s.dialTimeout != 750*time.Millisecond || s.username != "lr" || s.password != "pa:ss" {
		t.Fatalf("settings: %+v, %v", s, err)
	}
	s, err = readSettings(plain, env(map[string]string{"ETCDCTL_USER": "lr", "ETCDCTL_PASSWORD": "pw"}))
	if err != nil || s.username != "lr" || s.password != "pw" {
		t.Fatalf("ETCDCTL_PASSWORD: %+v, %v", s, err)
	}
	// TLS variables are ignored for etcd://, used for etcds://.
	s, err = readSettings(plain, env(map[string]string{"ETCDCTL_CACERT": "/nonexistent"}))
	if err != nil || s.tls != nil {
		t.Fatalf("etcd:// with ETCDCTL_CACERT: %+v, %v", s, err)
	}
	s, err = readSettings(tlsLoc, env(nil))
	if err != nil || s.tls == nil || s.tls.RootCAs != nil {
		t.Fatalf("etcds:// without files: %+v, %v (want the system's roots)", s, err)
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, b := range []struct {
		loc  *location
		env  map[string]string
		want error
		says string
	}{
		{plain, map[string]string{"ETCDCTL_DIAL_TIMEOUT": "5"}, ErrSetting, "ETCDCTL_DIAL_TIMEOUT"},
		{plain, map[string]string{"ETCDCTL_DIAL_TIMEOUT": "-1s"}, ErrSetting, "ETCDCTL_DIAL_TIMEOUT"},
		{plain, map[string]string{"ETCDCTL_USER": "lr"}, ErrSetting, "ETCDCTL_USER"},
		{plain, map[string]string{"ETCDCTL_USER": ":s3cret"}, ErrSetting, "ETCDCTL_USER"},
		{tlsLoc, map[string]string{"ETCDCTL_CACERT": filepath.Join(dir, "missing")}, os.ErrNotExist, "ETCDCTL_CACERT"},
		{tlsLoc, map[string]string{"ETCDCTL_CACERT": notPEM}, ErrSetting, "ETCDCTL_CACERT"},
		{tlsLoc, map[string]string{"ETCDCTL_CERT": notPEM}, ErrSetting, "ETCDCTL_KEY"},
		{tlsLoc, map[string]string{"ETCDCTL_CERT": notPEM, "ETCDCTL_KEY": notPEM}, nil, "ETCDCTL_CERT"},
	} {
		_, err := readSettings(b.loc, env(b.env))
		if err == nil || b.want != nil && !errors.Is(err, b.want) || !strings.Contains(err.Error(), b.says) {
			t.Errorf("readSettings(%v): %v; want %v saying %q", b.env, err, b.want, b.says)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// A cluster that cannot be reached is Open's error, within the dial
// timeout, naming every endpoint.
func TestOpenUnreachable(t *testing.T) {
	var eps []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, l.Addr().String())
		l.Close() // nothing listens there now
	}
	loc := "etcd://" + strings.Join(eps, ",") + "/k"
	start := time.Now()
	_, err := open(context.Background(), loc, env(map[string]string{"ETCDCTL_DIAL_TIMEOUT": "300ms", "ETCDCTL_USER": "u:s3cret"}))
	took := time.Since(start)
	if err == nil {
		t.Fatal("Open of an unreachable cluster succeeded")
	}
	t.Logf("%v (after %v)", err, took)
	if errors.Is(err, ErrLocation) || errors.Is(err, ErrSetting) || !strings.Contains(err.Error(), strings.Join(eps, ",")) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q: want one naming the endpoints %q, not a usage error, without the password", err, eps)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q, with a user: want it to say why (connection refused)", err)
	}
	// Without a user, the same reason.
	if _, err := open(context.Background(), loc, env(map[string]string{"ETCDCTL_DIAL_TIMEOUT": "300ms"})); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Open without a user: %v; want an error that says why (connection refused)", err)
	}
	if took > 5*time.Second {
		t.Errorf("Open took %v with a dial timeout of 300ms", took)
	}
	// ctx's deadline bounds the dial too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := open(ctx, loc, env(nil)); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("Open under a 200ms context: %v after %v", err, time.Since(start))
	}
}
