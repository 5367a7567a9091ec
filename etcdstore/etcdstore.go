// Package etcdstore keeps a lease (package lease) in one key of an etcd v3
// cluster: a lease.Store, and a lease.Watcher whose standbys wake on an
// etcd watch of the key.
//
// A location is
//
//	etcd://HOST:PORT[,HOST:PORT...]/KEY    plain gRPC
//	etcds://HOST:PORT[,HOST:PORT...]/KEY   gRPC over TLS
//
// with the key percent-decoded after the slash that ends the endpoints
// (etcd://h:2379/leases/job is the key "leases/job"; a port left out is
// 2379). TLS and authentication come from etcdctl's environment, so that a
// host set up for etcdctl works unchanged: ETCDCTL_CACERT, ETCDCTL_CERT,
// ETCDCTL_KEY (etcds:// only), ETCDCTL_USER (name:password, or a name
// with ETCDCTL_PASSWORD) and ETCDCTL_DIAL_TIMEOUT (default 5s). Neither a
// location nor anything this package says holds a password.
//
// How the register is kept (docs/DESIGN.md, "Part 4: the etcd store"):
//
//   - Swap is one transaction: if the key's ModRevision is old (for a
//     create: its CreateRevision is 0, there is no key), put the data. The
//     server decides the comparison and the put in one step of its state
//     machine. The new value's Revision is the put's ModRevision, in
//     decimal. A failed comparison is lease.ErrConflict, or
//     lease.ErrRemoved when the key is gone or was created anew after old
//     (the protocol never deletes it: someone did by hand).
//   - A call that does not return in time is given up and tried again
//     (on the next endpoint, where there are several) while the caller's
//     deadline allows; a write tried again after an attempt whose outcome
//     is unknown recognises its own data (the protocol's data is unique),
//     and reports an unknown outcome, never a conflict, when it cannot
//     tell.
//   - Load is a linearizable Get. Its Floor is the cluster's revision in
//     the response header: every epoch the protocol writes is at most the
//     revision of the write that wrote it, so the Floor bounds every epoch
//     written so far, even after the key was deleted by hand.
//   - Every write is durable: etcd replies only once a quorum of members
//     has written it to its write-ahead log and synced it.
//   - Responses are bounded (2 MiB): a value too large for that (only a
//     server whose --max-request-bytes was raised can hold one) loads as
//     empty data at its revision, which the protocol reads as a free lease,
//     as any value that is not a record.
package etcdstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/leaserun/leaserun/lease"
)

// maxResponse bounds what one response of the server may hold: a value
// of etcd's default largest request (1.5 MiB) fits, and a lease record is
// at most lease.MaxRecordSize.
const maxResponse = 2 << 20

// minAttempt is the least time one attempt of a call is given when the
// call's deadline leaves room for more than one.
const minAttempt = 500 * time.Millisecond

// Keepalive pings find a connection to a member that stopped answering
// (frozen, partitioned) so that calls no longer go there: gRPC pings at
// most every 10s.
const (
	keepAliveTime    = 10 * time.Second
	keepAliveTimeout = 3 * time.Second
)

// Store is a lease.Store and a lease.Watcher over one etcd key. It holds a
// client of the cluster: Close it when done. It is safe for concurrent
// use.
type Store struct {
	loc       string
	key       string
	endpoints []string
	cli       *clientv3.Client
}

// Open returns the store at location, connected to its cluster. It reads
// etcdctl's environment (see the package doc) and waits up to
// ETCDCTL_DIAL_TIMEOUT, or until ctx ends, for a connection to a
// member (and a moment more, when none came, to say why). A location that is not well formed is an error wrapping
// ErrLocation, an unusable setting one wrapping ErrSetting; a cluster that
// cannot be reached, or refuses the user, an error naming the endpoints.
func Open(ctx context.Context, location string) (*Store, error) {
	return open(ctx, location, os.Getenv)
}

func open(ctx context.Context, location string, getenv func(string) string) (*Store, error) {
	l, err := parseLocation(location)
	if err != nil {
		return nil, err
	}
	set, err := readSettings(l, getenv)
	if err != nil {
		return nil, err
	}
	s := &Store{loc: location, key: l.key, endpoints: l.endpoints}
	dial := set.dialTimeout
	if d, ok := ctx.Deadline(); ok {
		dial = min(dial, time.Until(d))
	}
	if dial <= 0 {
		return nil, fmt.Errorf("%s: connecting to etcd at %s: %w", location, s.endpointList(), context.DeadlineExceeded)
	}
	cfg := clientv3.Config{
		Endpoints:            l.urls(),
		DialTimeout:          dial,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
		MaxCallRecvMsgSize:   maxResponse,
		MaxCallSendMsgSize:   maxResponse,
		Username:             set.username,
		Password:             set.password,
		TLS:                  set.tls,
		Logger:               zap.NewNop(),
	}
	start := time.Now()
	type result struct {
		cli *clientv3.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		cli, err := clientv3.New(cfg)
		switch {
		case err == nil:
			err = s.connected(ctx, cli, dial)
			if err != nil {
				cli.Close()
				cli = nil
			}
		case cfg.Username != "" && !errors.As(err, new(rpctypes.EtcdError)):
			// New logs the user in, and when no connection came for
			// that, it does not say why: a client without the user does.
			err = s.whyNot(cfg, err)
		}
		done <- result{cli, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, s.openError(r.err, time.Since(start))
		}
		s.cli = r.cli
		return s, nil
	case <-ctx.Done():
		// New ends at its dial timeout, which ctx's deadline bounds; a
		// context cancelled sooner is not waited for.
		go func() {
			if r := <-done; r.cli != nil {
				r.cli.Close()
			}
		}()
		return nil, fmt.Errorf("%s: connecting to etcd at %s: %w", location, s.endpointList(), ctx.Err())
	}
}

// connected waits, for up to timeout, until the client is connected to a
// member, so that an unreachable cluster is Open's error, said once,
// rather than every call's: the client connects only when a call needs
// it. If none came, why says why.
func (s *Store) connected(ctx context.Context, cli *clientv3.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn := cli.ActiveConnection()
	conn.Connect()
	for {
		state := conn.GetState()
		if state == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, state) {
			break
		}
	}
	if err := s.why(conn); err != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return nil // connected just now
}

// why makes a call that waits a moment for a connection of conn, and
// returns its error if that says there is none (refused, a certificate
// not trusted); nil if it was answered, or refused by the cluster, which
// is for the calls that follow to say. It goes through the generated
// client: clientv3's KV would replace that error by its context's.
func (s *Store) why(conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), whyTimeout)
	defer cancel()
	_, err := pb.NewKVClient(conn).Range(ctx, &pb.RangeRequest{Key: []byte(s.key), Serializable: true, CountOnly: true}, grpc.WaitForReady(true))
	if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.Unavailable {
		return nil
	}
	return err
}

// whyNot is err, New's for cfg, with the reason why no connection came
// added, as a client made without cfg's user finds it.
func (s *Store) whyNot(cfg clientv3.Config, err error) error {
	cfg.Username, cfg.Password = "", ""
	cli, nerr := clientv3.New(cfg)
	if nerr != nil {
		return err
	}
	defer cli.Close()
	if why := s.why(cli.ActiveConnection()); why != nil {
		return fmt.Errorf("%w: %w", err, why)
	}
	return err
}

// whyTimeout is how long the call that says why no connection came waits.
const whyTimeout = 50 * time.Millisecond

// openError says why the cluster could not be reached or used.
func (s *Store) openError(err error, took time.Duration) error {
	if errors.As(err, new(rpctypes.EtcdError)) {
		// The cluster answered, and refused (authentication failed).
		return fmt.Errorf("%s: etcd at %s: %w", s.loc, s.endpointList(), err)
	}
	return fmt.Errorf("%s: cannot reach etcd at %s (no connection within %v): %w",
		s.loc, s.endpointList(), took.Round(time.Millisecond), err)
}

func (s *Store) endpointList() string { return strings.Join(s.endpoints, ",") }

// String is the location as Open was given it: it holds no secret.
func (s *Store) String() string { return s.loc }

// Key is the etcd key that holds the lease.
func (s *Store) Key() string { return s.key }

// Endpoints are the cluster's endpoints, HOST:PORT.
func (s *Store) Endpoints() []string { return append([]string(nil), s.endpoints...) }

// Close closes the client. It does not wait on the cluster: a member that
// hangs does not hold it up.
func (s *Store) Close() error {
	done := make(chan error, 1)
	go func() { done <- s.cli.Close() }()
	select {
	case err := <-done:
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return err
	case <-time.After(time.Second):
		return nil // it finishes in the background
	}
}

// Load reads the key with a linearizable Get: it returns the value the
// newest write left, with the cluster's revision as its Floor.
func (s *Store) Load(ctx context.Context) (lease.Value, error) {
	var v lease.Value
	err := s.attempts(ctx, "reading", func(ctx context.Context) (bool, error) {
		resp, err := s.cli.Get(ctx, s.key)
		if status.Code(err) == codes.ResourceExhausted {
			// A value too large for a response is no record: load its
			// revision, without it.
			resp, err = s.cli.Get(ctx, s.key, clientv3.WithKeysOnly())
			if err == nil {
				for _, kv := range resp.Kvs {
					kv.Value = nil
				}
			}
		}
		if err != nil {
			return retryable(err), err
		}
		v = lease.Value{Floor: uint64(max(resp.Header.Revision, 0))}
		if len(resp.Kvs) == 1 {
			kv := resp.Kvs[0]
			v.Rev = formatRev(kv.ModRevision)
			v.Data = capData(kv.Value)
		}
		return false, nil
	})
	return v, err
}

// capData is a value's data as Load returns it: at most
// lease.MaxRecordSize+1 bytes, with no room to append to.
func capData(b []byte) []byte {
	n := min(len(b), lease.MaxRecordSize+1)
	return b[:n:n]
}

// Swap replaces the value at old by data in one transaction on the key's
// revision. w is not needed: every write is durable, and Held is not
// asked.
func (s *Store) Swap(ctx context.Context, old lease.Revision, data []byte, _ lease.Write) (lease.Revision, error) {
	if len(data) > lease.MaxRecordSize {
		return "", fmt.Errorf("%s: %d bytes is more than a record may have", s, len(data))
	}
	var cond clientv3.Cmp
	if old == "" {
		cond = clientv3.Compare(clientv3.CreateRevision(s.key), "=", 0)
	} else {
		n, ok := parseRev(old)
		if !ok {
			return "", fmt.Errorf("%w: %s: %q is no revision of this store", lease.ErrConflict, s, old)
		}
		cond = clientv3.Compare(clientv3.ModRevision(s.key), "=", n)
	}
	put := clientv3.OpPut(s.key, string(data))
	var (
		rev     lease.Revision
		unknown bool // an attempt before ended with its outcome unknown
		result  error
	)
	err := s.attempts(ctx, "writing", func(ctx context.Context) (bool, error) {
		// After an attempt whose outcome is unknown, read the value back
		// with the comparison, to know it if it is ours.
		look := clientv3.OpGet(s.key, clientv3.WithKeysOnly())
		if unknown {
			look = clientv3.OpGet(s.key)
		}
		resp, err := s.cli.Txn(ctx).If(cond).Then(put).Else(look).Commit()
		if err != nil {
			// The attempt may have taken effect, or may yet.
			unknown = true
			return retryable(err), err
		}
		if resp.Succeeded {
			// A transaction's writes take its revision, the header's.
			rev = formatRev(resp.Header.Revision)
			return false, nil
		}
		var cur *struct{ mod, create int64 }
		if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) == 1 {
			kv := r.Kvs[0]
			if unknown && bytes.Equal(kv.Value, data) {
				// An earlier attempt of ours made it: the data is unique.
				rev = formatRev(kv.ModRevision)
				return false, nil
			}
			cur = &struct{ mod, create int64 }{kv.ModRevision, kv.CreateRevision}
		}
		oldN, _ := parseRev(old)
		switch {
		case unknown:
			// Ours may have taken effect and been replaced since.
			result = fmt.Errorf("%s: writing: an attempt timed out and the key has changed since: the outcome is unknown", s)
		case old != "" && (cur == nil || cur.create > oldN):
			// The protocol never deletes the key: someone did, by hand,
			// after the value at old was written.
			if cur == nil {
				result = fmt.Errorf("%w: %s: the key %q was deleted", lease.ErrRemoved, s, s.key)
			} else {
				result = fmt.Errorf("%w: %s: the key %q was deleted and made anew at revision %d", lease.ErrRemoved, s, s.key, cur.create)
			}
		case cur == nil:
			result = fmt.Errorf("%w: %s: the key %q is gone", lease.ErrConflict, s, s.key)
		default:
			result = fmt.Errorf("%w: %s is at revision %d, not %q", lease.ErrConflict, s, cur.mod, old)
		}
		return false, nil
	})
	if err != nil {
		return "", err
	}
	if result != nil {
		return "", result
	}
	return rev, nil
}

// attempts runs call until it succeeds, fails for good, or ctx ends. Each
// attempt gets half of the time left (at least minAttempt, and all of it
// when that leaves no room for another): a member that hangs, or a
// request forwarded to a leader that died, takes only its attempt's time,
// and the next attempt goes to the next endpoint. call returns whether
// its error is worth another attempt.
func (s *Store) attempts(ctx context.Context, what string, call func(ctx context.Context) (retry bool, err error)) error {
	var err error
	for i := 0; ; i++ {
		actx, cancel := attemptContext(ctx)
		var retry bool
		retry, err = call(actx)
		cancel()
		if err == nil {
			return nil
		}
		if !retry || ctx.Err() != nil {
			break
		}
		// A pause, so that an error that comes at once (a member
		// without a leader) does not spin.
		pause := time.NewTimer(min(10*time.Millisecond<<min(i, 5), 250*time.Millisecond))
		select {
		case <-ctx.Done():
		case <-pause.C:
		}
		pause.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%s: %s: %w (etcd at %s; the last attempt: %w)", s, what, cerr, s.endpointList(), err)
	}
	return fmt.Errorf("%s: %s (etcd at %s): %w", s, what, s.endpointList(), err)
}

// attemptContext is the context of one attempt of a call under ctx.
func attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	left := time.Until(d)
	if left <= 2*minAttempt {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, max(left/2, minAttempt))
}

// retryable reports whether another attempt may do better than the one
// that failed with err: not for a refusal (permission, authentication, a
// malformed request), which would only be repeated.
func retryable(err error) bool {
	switch status.Code(unwrapStatus(err)) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated,
		codes.FailedPrecondition, codes.OutOfRange, codes.Unimplemented, codes.ResourceExhausted:
		return false
	}
	return true
}

// unwrapStatus finds the gRPC status in err; the client's errors for the
// server's refusals (rpctypes.EtcdError) carry their code too.
func unwrapStatus(err error) error {
	var coded interface{ Code() codes.Code }
	if errors.As(err, &coded) {
		return status.Error(coded.Code(), err.Error())
	}
	return err
}

func formatRev(n int64) lease.Revision { return lease.Revision(strconv.FormatInt(n, 10)) }

func parseRev(r lease.Revision) (int64, bool) {
	n, err := strconv.ParseInt(string(r), 10, 64)
	return n, err == nil && n > 0
}
