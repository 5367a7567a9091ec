package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// A Scheme is a store of leases that an executable links, named by the
// scheme of the --lease URLs it serves ("s3" for s3://BUCKET/KEY).
type Scheme struct {
	Name string
	// Open returns the store at location, the --lease value as given. An
	// error wrapping lease.ErrInvalid is a usage error (exit 64) about
	// --lease; any other, an I/O error (exit 74).
	Open func(ctx context.Context, location string) (lease.Store, error)
}

// siblings names, by scheme, the executable that links each network store.
// The leaserun executable links only the file store: the network stores'
// clients (the AWS SDK, etcd's gRPC client) would cost every run more at
// start-up than the whole of leaserun, so a location of theirs is handed to
// the executable that has them, found beside leaserun and then on PATH.
var siblings = map[string]string{
	"s3":    "leaserun-s3",
	"etcd":  "leaserun-etcd",
	"etcds": "leaserun-etcd",
}

// leaseAt is where a --lease value says the lease lives.
type leaseAt struct {
	// path is a file lease's path; empty for a URL of another scheme.
	path string
	// scheme is the URL's scheme, in lower case, for a lease that is not a
	// file.
	scheme string
}

// parseLease reads a --lease value: a path, a file:// URL, or the URL of a
// store. Only a value that starts with a URL scheme and "://" is a URL, so
// that any other path, colons and all, is a path.
func parseLease(value string) (leaseAt, error) {
	scheme, _, isURL := strings.Cut(value, "://")
	if !isURL || !validScheme(scheme) {
		return leaseAt{path: value}, nil
	}
	scheme = strings.ToLower(scheme)
	if scheme != "file" {
		if _, ok := siblings[scheme]; !ok {
			return leaseAt{}, usageErrorf("--lease %s: unknown scheme %q: give a path, or a file://, s3://, etcd:// or etcds:// URL", value, scheme)
		}
		return leaseAt{scheme: scheme}, nil
	}
	u, err := url.Parse(value)
	switch {
	case err != nil:
		return leaseAt{}, usageErrorf("--lease %s: %v", value, err)
	case u.Host != "" && u.Host != "localhost":
		return leaseAt{}, usageErrorf("--lease %s: a file:// URL names a file on this host: file:///PATH", value)
	case u.Path == "" || u.RawQuery != "" || u.Fragment != "":
		return leaseAt{}, usageErrorf("--lease %s: expected file:///PATH", value)
	}
	return leaseAt{path: filepath.FromSlash(u.Path)}, nil
}

// validScheme reports whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, "+", "-" or ".").
func validScheme(s string) bool {
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// leases is what an executable links (stores, the health server), and its
// command line, to hand to the executable that links what it does not.
type leases struct {
	args []string
	links
	early *earlyOpen // set by openEarly until open takes it
}

// open returns the store of the lease at value, and its name for logs and
// the child's environment: the file store of a path (name: the path), or
// the store of a scheme this executable links (name: the store's String).
// For a scheme it does not link, it hands the whole command line to the
// executable that does, which takes this process's place (see handOff),
// and returns only if it can't.
func (ls *leases) open(ctx context.Context, value string) (lease.Store, string, error) {
	at, err := parseLease(value)
	if err != nil {
		return nil, "", err
	}
	if at.scheme == "" {
		if abs, err := filepath.Abs(at.path); err == nil {
			at.path = abs
		}
		return lease.Files(at.path), at.path, nil
	}
	if e := ls.early; e != nil && e.value == value {
		ls.early = nil
		<-e.done
		if e.err != nil {
			return nil, "", e.err
		}
		return &primed{Store: e.st, first: e.first}, e.name, nil
	}
	ls.closeEarly() // opened for another value: not to be held for the run
	if s, ok := ls.scheme(at.scheme); ok {
		return openScheme(ctx, s, value)
	}
	return nil, "", ls.handOff("--lease "+value, "this store is", siblings[at.scheme])
}

// openScheme opens the lease at value in the store s.
func openScheme(ctx context.Context, s Scheme, value string) (lease.Store, string, error) {
	st, err := s.Open(ctx, value)
	switch {
	case errors.Is(err, lease.ErrInvalid) && strings.Contains(value, "@"):
		// Perhaps a password in the URL, which a store refuses: its error
		// names the location without it.
		return nil, "", usageErrorf("--lease: %v", err)
	case errors.Is(err, lease.ErrInvalid):
		return nil, "", usageErrorf("--lease %s: %v", value, err)
	case err != nil:
		return nil, "", err
	}
	return st, st.String(), nil
}

// earlyOpen is the opening of a network store begun before the command
// line is parsed (see openEarly).
type earlyOpen struct {
	value  string // the --lease value
	cancel context.CancelFunc
	done   chan struct{} // closed once st, name, err and first are set
	st     lease.Store
	name   string
	err    error
	first  *firstLoad // begun once st was open
}

// firstLoad is the read of the lease that openEarly begins as soon as the
// store is open, while the command line is still being parsed: every run,
// status and release begins with one (see primed).
type firstLoad struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once v, err and at are set
	v      lease.Value
	err    error
	at     time.Time // when it was answered
}

// firstLoadFresh is how long after its answer the first read may still be
// taken for the first Load's: no older than the answer to a Load made then
// can be by the time its caller judges it.
const firstLoadFresh = 100 * time.Millisecond

// firstLoadTimeout bounds the first read: past it, the Load that would
// have taken it reads on its own (within its own deadline).
const firstLoadTimeout = 10 * time.Second

// primed is a network store opened by openEarly: its first call, if it is
// a Load, takes the answer to the read begun at the start (waiting for it
// while it is under way), rather than read the store again. That answer
// is a moment older than a read made then would be, which is as if
// leaserun had been started a moment sooner: a stale Load costs a failed
// Swap at most, never safety (lease.Store). Any other call first (a Swap,
// a Watch) drops it.
type primed struct {
	lease.Store
	mu    sync.Mutex
	first *firstLoad // nil once taken
}

func (p *primed) take() *firstLoad {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.first
	p.first = nil
	return f
}

func (p *primed) drop() {
	if f := p.take(); f != nil {
		f.cancel()
	}
}

// Load returns the first read's answer if this is the first call, the
// read succeeded and was answered at most firstLoadFresh ago; else it
// reads the store. It waits for a first read under way for half the time
// ctx leaves at most, as a store gives one attempt of a call (a first read
// stuck on a member that hangs must not take the whole of a short TTL),
// and then reads with the rest.
func (p *primed) Load(ctx context.Context) (lease.Value, error) {
	if f := p.take(); f != nil {
		var giveUp <-chan time.Time
		if d, ok := ctx.Deadline(); ok {
			t := time.NewTimer(time.Until(d) / 2)
			defer t.Stop()
			giveUp = t.C
		}
		select {
		case <-f.done:
			if f.err == nil && time.Since(f.at) <= firstLoadFresh {
				return f.v, nil
			}
		case <-giveUp:
			f.cancel()
		case <-ctx.Done():
			f.cancel()
		}
	}
	return p.Store.Load(ctx)
}

func (p *primed) Swap(ctx context.Context, old lease.Revision, data []byte, w lease.Write) (lease.Revision, error) {
	p.drop()
	return p.Store.Swap(ctx, old, data, w)
}

// Watch is the store's watch, or nil (Wait polls) if it has none. A watch
// reports what comes after it is set up: the older first read is dropped.
func (p *primed) Watch(ctx context.Context) lease.Watch {
	p.drop()
	if w, ok := p.Store.(lease.Watcher); ok {
		return w.Watch(ctx)
	}
	return nil
}

// openEarly begins to open the store of the lease that earlyLease finds in
// the command line, when it is in a network store this executable links:
// its client connects (a TCP connection and HTTP/2's handshake with etcd)
// while kong builds its model and parses, and
// open takes the result for the same --lease value. A lease that is not
// plain to see, or another value once parsed, is opened by open as ever.
func (ls *leases) openEarly() {
	value, ok := earlyLease(ls.args)
	if !ok {
		return
	}
	at, err := parseLease(value)
	if err != nil || at.scheme == "" {
		return
	}
	s, ok := ls.scheme(at.scheme)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &earlyOpen{value: value, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.st, e.name, e.err = openScheme(ctx, s, value)
		if e.err == nil {
			e.first = loadFirst(ctx, e.st)
		}
	}()
	ls.early = e
}

// loadFirst begins the first read of st, which ends with ctx.
func loadFirst(ctx context.Context, st lease.Store) *firstLoad {
	ctx, cancel := context.WithTimeout(ctx, firstLoadTimeout)
	f := &firstLoad{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer cancel()
		f.v, f.err = st.Load(ctx)
		f.at = time.Now()
		close(f.done)
	}()
	return f
}

// closeEarly ends an opening that open did not take (the command line
// was bad, asked for help, or named another lease): it cancels it, waits
// for it to return, and closes the store it opened, if any.
func (ls *leases) closeEarly() {
	e := ls.early
	if e == nil {
		return
	}
	ls.early = nil
	e.cancel()
	<-e.done
	if e.first != nil {
		<-e.first.done
	}
	if c, ok := e.st.(io.Closer); ok {
		c.Close()
	}
}

// handOffEarly hands the command line to the executable that serves its
// lease, as open would, but before it is parsed: building kong's model of
// the command line and parsing it would cost every such run as much again
// as the rest of leaserun's start. It hands it on only when the lease is
// plain to see (earlyLease) in a scheme this executable does not link and
// the executable that does is there, and only from an executable that
// links no store but the file store (leaserun): one that does parses
// first, so that a command line whose lease earlyLease and kong would read
// apart can never be handed back and forth. It returns the status of the run
// where that executable runs as a child (Windows), and handed false when
// it did not hand the command line on: the parse then goes on as ever,
// and says what is wrong with it, or what to install. What it hands on is
// what open would have handed, or a command line whose error the other
// executable, which parses as this one does, says in the same words.
func (ls *leases) handOffEarly() (status int, handed bool) {
	value, ok := earlyLease(ls.args)
	if !ok {
		return 0, false
	}
	at, err := parseLease(value)
	if err != nil || at.scheme == "" || len(ls.schemes) > 0 {
		return 0, false
	}
	path, err := findSibling(siblings[at.scheme])
	if err != nil {
		return 0, false
	}
	err = replaceProcess(path, append([]string{siblings[at.scheme]}, ls.args...))
	var st exitStatus
	if errors.As(err, &st) {
		return int(st), true
	}
	return 0, false // not started: the parse and open say why
}

// earlyLease finds the --lease value in args without parsing them, where
// kong would find the same: the value of the last --lease or -l before
// "--" (kong keeps the last), else LEASERUN_LEASE if it is set and not
// empty. It finds none (ok false) where kong might read args otherwise or
// this executable answers itself: a flag that asks for help or the
// version; -l with its value attached, or among other short flags; and a
// command line without "--" but for "status" and "release", since a run's
// command may come without one, and a -l among its arguments is its own.
func earlyLease(args []string) (string, bool) {
	value, ok := "", false
	dashes := false
scan:
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			dashes = true
			break scan
		case a == "--help" || a == "--version" || strings.HasPrefix(a, "--help=") || strings.HasPrefix(a, "--version="):
			return "", false
		case a == "--lease" || a == "-l":
			if i+1 < len(args) {
				value, ok = args[i+1], true
				i++
			}
		case strings.HasPrefix(a, "--lease="):
			value, ok = strings.TrimPrefix(a, "--lease="), true
		case len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.ContainsAny(a, "hl"):
			return "", false // -h, or -l with more, alone or among other short flags
		}
	}
	if !dashes && (len(args) == 0 || args[0] != "status" && args[0] != "release") {
		return "", false
	}
	if !ok {
		return envLease()
	}
	return value, true
}

// envLease is LEASERUN_LEASE, if it is set and not empty (an empty one
// counts as unset: see BeforeReset).
func envLease() (string, bool) {
	v := os.Getenv("LEASERUN_LEASE")
	return v, v != ""
}

// handOff runs the executable name with this process's command line in
// this process's place, beside this executable or else on PATH. It returns
// only an error: that there is no such executable (said as "flag: what
// served by name ..."), or that it could not be started.
func (ls *leases) handOff(flag, what, name string) error {
	path, err := findSibling(name)
	if err != nil {
		return fmt.Errorf("%s: %s served by %s, which is neither beside this leaserun nor on PATH: "+
			"install it (go install github.com/leaserun/leaserun/cmd/%s@latest), or use the container image, which has it", flag, what, name, name)
	}
	return replaceProcess(path, append([]string{name}, ls.args...))
}

// findSibling finds the executable name beside this one, or else on PATH.
func findSibling(name string) (string, error) {
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), name+exeSuffix)
		if fi, err := os.Stat(beside); err == nil && fi.Mode().IsRegular() {
			return beside, nil
		}
	}
	return lookPath(name)
}

// leaseError ends leaserun for an error opening the lease's store: a usage
// error as such (exit 64), any other as an I/O error (exit 74).
func leaseError(stderr io.Writer, err error) error {
	var status exitStatus
	if errors.As(err, new(usageError)) || errors.As(err, &status) {
		return err
	}
	fmt.Fprintf(stderr, "leaserun: error: %v\n", err)
	return exitStatus(exitIO)
}
