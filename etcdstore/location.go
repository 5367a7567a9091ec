package etcdstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrLocation is wrapped by Open's error for a location that is not a
// well-formed etcd:// or etcds:// location: a usage error. The error says
// what is wrong, and never repeats a user or password.
var ErrLocation = errors.New("bad etcd location")

// ErrSetting is wrapped by Open's error for an ETCDCTL_* environment
// variable whose value cannot be used (a duration that does not parse, a
// user without a password): a usage error too, naming the variable.
var ErrSetting = errors.New("bad etcd setting")

// DefaultPort is the port of an endpoint that names none: etcd's client
// port.
const DefaultPort = "2379"

// DefaultDialTimeout bounds Open's wait for a connection when
// ETCDCTL_DIAL_TIMEOUT is not set.
const DefaultDialTimeout = 5 * time.Second

// location is a parsed etcd:// or etcds:// location.
type location struct {
	tls       bool
	endpoints []string // HOST:PORT
	key       string
}

// parseLocation parses etcd://HOST[:PORT][,HOST[:PORT]...]/KEY (or
// etcds://). KEY is everything after the slash that ends the endpoints,
// percent-decoded: etcd://h/a/b is the key "a/b", etcd://h//a/b the key
// "/a/b". A location has no user information (credentials come from the
// environment, never from a URL that ends up in logs and records), no
// query and no fragment.
func parseLocation(loc string) (*location, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrLocation}, args...)...)
	}
	scheme, rest, ok := strings.Cut(loc, "://")
	l := &location{}
	switch {
	case !ok:
		return nil, bad("want etcd://HOST:PORT[,HOST:PORT...]/KEY or etcds://...")
	case scheme == "etcd":
	case scheme == "etcds":
		l.tls = true
	default:
		return nil, bad("the scheme is etcd:// (plain) or etcds:// (TLS)")
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		// Show the rest, never what stands before the @.
		return nil, bad("a location holds no user or password: set ETCDCTL_USER=name:password in the environment")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, bad("an etcd location has no query or fragment (write ? as %%3F and # as %%23 in a key)")
	}
	if authority == "" {
		return nil, bad("no endpoint: want etcd://HOST:PORT[,HOST:PORT...]/KEY")
	}
	for ep := range strings.SplitSeq(authority, ",") {
		host, port, err := net.SplitHostPort(ep)
		if err != nil {
			// No port: etcd's own, 2379.
			if h, _, err2 := net.SplitHostPort(ep + ":" + DefaultPort); err2 == nil && !strings.HasSuffix(ep, ":") {
				host, port, err = h, DefaultPort, nil
			}
		}
		if err != nil || host == "" {
			return nil, bad("endpoint %q: want HOST:PORT", ep)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, bad("endpoint %q: port %q is not a port number", ep, port)
		}
		l.endpoints = append(l.endpoints, net.JoinHostPort(host, port))
	}
	key, err := url.PathUnescape(path)
	if err != nil {
		return nil, bad("the key is not well percent-encoded: %v", err)
	}
	if !hasPath || key == "" {
		return nil, bad("no key: want etcd://HOST:PORT[,HOST:PORT...]/KEY")
	}
	l.key = key
	return l, nil
}

// urls are the endpoints as the client wants them.
func (l *location) urls() []string {
	scheme := "http://"
	if l.tls {
		scheme = "https://"
	}
	urls := make([]string, len(l.endpoints))
	for i, ep := range l.endpoints {
		urls[i] = scheme + ep
	}
	return urls
}

// settings are what Open takes from etcdctl's environment.
type settings struct {
	dialTimeout        time.Duration
	username, password string
	tls                *tls.Config // for etcds:// only
}

// readSettings reads etcdctl's environment through getenv:
// ETCDCTL_DIAL_TIMEOUT, ETCDCTL_USER (name:password, or a name with
// ETCDCTL_PASSWORD) and, for TLS, ETCDCTL_CACERT, ETCDCTL_CERT and
// ETCDCTL_KEY. Errors never hold a password.
func readSettings(l *location, getenv func(string) string) (*settings, error) {
	s := &settings{dialTimeout: DefaultDialTimeout}
	if v := getenv("ETCDCTL_DIAL_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%w: ETCDCTL_DIAL_TIMEOUT=%q is not a duration (such as 5s)", ErrSetting, v)
		}
		if d <= 0 {
			return nil, fmt.Errorf("%w: ETCDCTL_DIAL_TIMEOUT=%q is not positive", ErrSetting, v)
		}
		s.dialTimeout = d
	}
	if v := getenv("ETCDCTL_USER"); v != "" {
		name, password, ok := strings.Cut(v, ":")
		if !ok {
			password = getenv("ETCDCTL_PASSWORD")
		}
		if name == "" || password == "" {
			return nil, fmt.Errorf("%w: ETCDCTL_USER wants name:password (or a name, with ETCDCTL_PASSWORD set)", ErrSetting)
		}
		s.username, s.password = name, password
	}
	if !l.tls {
		return s, nil
	}
	s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := getenv("ETCDCTL_CACERT"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("ETCDCTL_CACERT: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ETCDCTL_CACERT=%s holds no PEM certificate", ErrSetting, ca)
		}
		s.tls.RootCAs = pool
	}
	cert, key := getenv("ETCDCTL_CERT"), getenv("ETCDCTL_KEY")
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("ETCDCTL_CERT and ETCDCTL_KEY: %w", err)
		}
		s.tls.Certificates = []tls.Certificate{pair}
	case cert != "" || key != "":
		return nil, fmt.Errorf("%w: ETCDCTL_CERT and ETCDCTL_KEY go together: set both or neither", ErrSetting)
	}
	return s, nil
}
