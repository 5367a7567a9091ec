package etcdstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/etcdtest"
	"github.com/leaserun/leaserun/lease"
)

// openEnv opens location with the environment env, for t.
func openEnv(t *testing.T, location string, env map[string]string) (*Store, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := open(ctx, location, func(k string) string { return env[k] })
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// cycle acquires, hands off to a standby woken by the watch, and
// releases: the lease's whole use of the store.
func cycle(t *testing.T, a, b *Store) {
	t.Helper()
	l, err := lease.AcquireStore(a, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	st, err := lease.ReadStore(context.Background(), b)
	if err != nil || st.State != lease.StateHeld || st.Record.InstanceID != l.InstanceID() {
		t.Fatalf("ReadStore: %+v, %v", st, err)
	}
	got := make(chan *lease.Lease, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		w, err := lease.WaitStore(ctx, b, time.Minute, lease.WithPollInterval(time.Hour))
		if err != nil {
			t.Error(err)
		}
		got <- w
	}()
	time.Sleep(300 * time.Millisecond)
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	w := <-got
	if w == nil {
		t.FailNow()
	}
	if w.Epoch() <= l.Epoch() {
		t.Errorf("epoch %d after %d", w.Epoch(), l.Epoch())
	}
	if err := w.Release(); err != nil {
		t.Fatal(err)
	}
}

// etcds:// with the CA, certificate and key from etcdctl's environment,
// to a cluster that asks for client certificates.
func TestTLS(t *testing.T) {
	files := etcdtest.NewTLS(t)
	files.ClientAuth = true
	c := etcdtest.Start(t, etcdtest.Options{TLS: files})
	loc := newKey(t, c)
	if !strings.HasPrefix(loc, "etcds://") {
		t.Fatalf("location %q", loc)
	}
	env := map[string]string{"ETCDCTL_CACERT": files.CA, "ETCDCTL_CERT": files.ClientCert, "ETCDCTL_KEY": files.ClientKey}
	a, err := openEnv(t, loc, env)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openEnv(t, loc, env)
	if err != nil {
		t.Fatal(err)
	}
	cycle(t, a, b)

	// Without the CA the server is not trusted; without a client
	// certificate the server refuses: errors naming the endpoint, at once
	// or at the dial timeout.
	for name, env := range map[string]map[string]string{
		"no CA":                 {"ETCDCTL_CERT": files.ClientCert, "ETCDCTL_KEY": files.ClientKey, "ETCDCTL_DIAL_TIMEOUT": "1s"},
		"no client certificate": {"ETCDCTL_CACERT": files.CA, "ETCDCTL_DIAL_TIMEOUT": "1s"},
	} {
		_, err := openEnv(t, loc, env)
		t.Logf("%s: %v", name, err)
		if err == nil || !strings.Contains(err.Error(), c.Endpoints()) {
			t.Errorf("%s: %v; want an error naming %s", name, err, c.Endpoints())
		}
	}
	// etcd:// to a TLS port does not connect.
	if _, err := openEnv(t, strings.Replace(loc, "etcds://", "etcd://", 1), map[string]string{"ETCDCTL_DIAL_TIMEOUT": "1s"}); err == nil {
		t.Error("etcd:// connected to a TLS port")
	}
}

// With authentication on, a user whose role may read and write the key
// prefix (the README's recipe) holds, hands off through the watch, and
// releases; a key outside the prefix is refused, and no error shows the
// password.
func TestAuth(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	const rootPW, userPW = "r00t-s3cret", "lr-s3cret"
	for _, args := range [][]string{
		{"user", "add", "root", "--new-user-password=" + rootPW},
		{"user", "grant-role", "root", "root"},
		{"role", "add", "leaserun"},
		{"role", "grant-permission", "leaserun", "readwrite", "leases/", "--prefix=true"},
		{"user", "add", "lr", "--new-user-password=" + userPW},
		{"user", "grant-role", "lr", "leaserun"},
		{"auth", "enable"},
	} {
		if out, err := c.Etcdctl(t, nil, args...); err != nil {
			t.Fatalf("etcdctl %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	env := map[string]string{"ETCDCTL_USER": "lr:" + userPW}
	loc := c.Location("leases/job")
	a, err := openEnv(t, loc, env)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openEnv(t, loc, env)
	if err != nil {
		t.Fatal(err)
	}
	cycle(t, a, b)
	if strings.Contains(a.String(), userPW) {
		t.Errorf("String() = %q", a.String())
	}

	noPassword := func(what string, err error) {
		t.Helper()
		t.Logf("%s: %v", what, err)
		if err == nil {
			t.Errorf("%s: no error", what)
		} else if strings.Contains(err.Error(), userPW) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", what, err)
		}
	}
	// A key outside the role's prefix: reading it is refused, not free.
	other, err := openEnv(t, c.Location("other/job"), env)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lease.AcquireStore(other, time.Minute)
	noPassword("acquiring outside the prefix", err)
	if err != nil && !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("acquiring outside the prefix: %v, want permission denied", err)
	}
	// A wrong password, and no user at all.
	_, err = openEnv(t, loc, map[string]string{"ETCDCTL_USER": "lr:wrong-s3cret"})
	noPassword("a wrong password", err)
	anon, err := openEnv(t, loc, nil)
	if err == nil {
		_, err = anon.Load(context.Background())
	}
	noPassword("no user", err)
}
