// Package etcdtest runs real etcd servers for tests: one member or a
// cluster of several, on free loopback ports with temporary data
// directories, stopped when the test ends. It needs the etcd binary
// (Debian's etcd-server) on PATH, or named by $ETCD_BIN, and skips the
// test where there is none. It speaks to the servers only through their
// /health endpoint and their processes, so it links no etcd client.
package etcdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options say how to run a cluster. The zero Options run one member.
type Options struct {
	// Members is the number of members (default 1).
	Members int
	// Args are more flags for every member (say, --max-request-bytes).
	Args []string
	// TLS, if not nil, serves the client port over TLS with these files
	// (etcds://); the peers still speak plain HTTP on loopback.
	TLS *TLSFiles
	// HeartbeatInterval and ElectionTimeout are raft's (default 100ms and
	// 1s, etcd's own defaults).
	HeartbeatInterval, ElectionTimeout time.Duration
}

// TLSFiles are the files of a cluster served over TLS (NewTLS makes
// them): the CA that signed the others, the server's certificate (for
// 127.0.0.1) and key, and a client's.
type TLSFiles struct {
	CA, Cert, Key, ClientCert, ClientKey string
	// ClientAuth makes the server ask for a client certificate signed by
	// CA (--client-cert-auth).
	ClientAuth bool
}

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	Members []*Member
	tls     *TLSFiles
}

// Member is one etcd process of a Cluster.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:PORT (https:// with TLS)
	PeerURL   string
	Dir       string // the data directory
	Log       string // the server's log file

	c    *Cluster
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Binary returns the path of the etcd binary, or "" if there is none.
func Binary() string {
	if b := os.Getenv("ETCD_BIN"); b != "" {
		return b
	}
	b, err := exec.LookPath("etcd")
	if err != nil {
		return ""
	}
	return b
}

// Skip skips t unless an etcd binary can be run.
func Skip(t testing.TB) {
	t.Helper()
	if Binary() == "" {
		t.Skip("no etcd binary on PATH (Debian: apt-get install etcd-server; or set ETCD_BIN): the etcd store's tests run against a real server")
	}
}

// Start starts a cluster for t and stops it when t ends. It skips t where
// there is no etcd binary.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	Skip(t)
	if o.Members == 0 {
		o.Members = 1
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 100 * time.Millisecond
	}
	if o.ElectionTimeout == 0 {
		o.ElectionTimeout = time.Second
	}
	var err error
	for try := 0; try < 3; try++ {
		var c *Cluster
		c, err = start(t, o)
		if err == nil {
			t.Cleanup(c.stop)
			return c
		}
		// A port another process took between our probe and etcd's bind:
		// try again on other ports.
	}
	t.Fatalf("starting etcd: %v", err)
	return nil
}

func start(t testing.TB, o Options) (*Cluster, error) {
	root, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	c := &Cluster{t: t, tls: o.TLS}
	ports, err := freePorts(2 * o.Members)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if o.TLS != nil {
		scheme = "https"
	}
	var initial []string
	for i := range o.Members {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			c:         c,
		}
		m.Dir = filepath.Join(root, m.Name)
		m.Log = filepath.Join(root, m.Name+".log")
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name,
			"--data-dir", m.Dir,
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", filepath.Base(root),
			"--heartbeat-interval", strconv.FormatInt(o.HeartbeatInterval.Milliseconds(), 10),
			"--election-timeout", strconv.FormatInt(o.ElectionTimeout.Milliseconds(), 10),
			"--logger", "zap", "--log-outputs", m.Log,
		}
		if o.TLS != nil {
			m.args = append(m.args, "--cert-file", o.TLS.Cert, "--key-file", o.TLS.Key)
			if o.TLS.ClientAuth {
				m.args = append(m.args, "--trusted-ca-file", o.TLS.CA, "--client-cert-auth")
			}
		}
		m.args = append(m.args, o.Args...)
		if err := m.start(); err != nil {
			c.stop()
			return nil, err
		}
	}
	for _, m := range c.Members {
		if err := m.WaitHealthy(30 * time.Second); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Endpoints returns the members' client addresses, HOST:PORT, joined by
// commas as a location wants them.
func (c *Cluster) Endpoints() string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Addr())
	}
	return strings.Join(eps, ",")
}

// Location returns the etcd:// (or, with TLS, etcds://) location of key
// on the whole cluster.
func (c *Cluster) Location(key string) string {
	scheme := "etcd"
	if c.tls != nil {
		scheme = "etcds"
	}
	return scheme + "://" + c.Endpoints() + "/" + key
}

// Addr is the member's client address, HOST:PORT.
func (m *Member) Addr() string {
	_, addr, _ := strings.Cut(m.ClientURL, "://")
	return addr
}

func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(Binary(), m.args...)
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=")
	out, err := os.OpenFile(m.Log+".out", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, and (Linux) killed when the test dies.
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", Binary(), err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	m.cmd, m.done = cmd, done
	return nil
}

// Running reports whether the member's process is running (or stopped
// by a signal): it has not exited.
func (m *Member) Running() bool {
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Healthy asks the member's /health endpoint once, within timeout.
func (m *Member) Healthy(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", m.ClientURL+"/health", nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{}
	if m.c.tls != nil {
		cfg, err := m.c.clientTLS()
		if err != nil {
			return err
		}
		tr.TLSClientConfig = cfg
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if err := json.Unmarshal(body.Bytes(), &h); err != nil || h.Health != "true" {
		return fmt.Errorf("%s: /health: %s %s", m.Name, resp.Status, strings.TrimSpace(body.String()))
	}
	return nil
}

// WaitHealthy waits until the member reports itself healthy (it serves,
// and the cluster has a leader), or fails after timeout.
func (m *Member) WaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if !m.Running() {
			return fmt.Errorf("%s exited: %s", m.Name, m.tail())
		}
		err := m.Healthy(time.Second)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %v: %v; log: %s", m.Name, timeout, err, m.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail is the end of the member's log, for messages.
func (m *Member) tail() string {
	var b []byte
	for _, name := range []string{m.Log + ".out", m.Log} {
		data, _ := os.ReadFile(name)
		b = append(b, data...)
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Signal sends sig to the member's process.
func (m *Member) Signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Signal(sig)
	}
}

// Freeze stops the member with SIGSTOP: it keeps its sockets, and
// answers nothing, as a hung server does. Thaw undoes it. (Unix only.)
// On Linux it returns once every thread of the member has stopped, and
// fails the test if that takes over 10s: the signal stops a thread only
// when that thread next runs, and until then a request may still be
// answered.
func (m *Member) Freeze() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(sigStop)
	for deadline := time.Now().Add(10 * time.Second); !stopped(cmd.Process.Pid); time.Sleep(time.Millisecond) {
		select {
		case <-done:
			return
		default:
		}
		if time.Now().After(deadline) {
			m.c.t.Errorf("etcd %s: not every thread stopped 10s after SIGSTOP", m.Name)
			return
		}
	}
}

// Thaw continues a frozen member.
func (m *Member) Thaw() { m.Signal(sigCont) }

// Stop stops the member: SIGTERM (after SIGCONT, should it be frozen),
// then SIGKILL if it has not exited within 10s. It waits for the exit.
func (m *Member) Stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	terminate(cmd.Process)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Kill kills the member with SIGKILL and waits for it to exit.
func (m *Member) Kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Restart starts a stopped member again, on its data directory and
// ports, and waits until it is healthy (it may be alone in a cluster
// without quorum: then only until it serves).
func (m *Member) Restart() error {
	if m.Running() {
		return errors.New(m.Name + " is running")
	}
	// Its data directory says it is a member now.
	for i, a := range m.args {
		if a == "--initial-cluster-state" {
			m.args[i+1] = "existing"
		}
	}
	var err error
	for range 50 {
		// The port may take a moment to be free after the kill.
		if err = m.start(); err != nil {
			return err
		}
		if err = m.WaitHealthy(30 * time.Second); err == nil || m.Running() {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// stop stops every member.
func (c *Cluster) stop() {
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Go(m.Stop)
	}
	wg.Wait()
	if c.t.Failed() {
		for _, m := range c.Members {
			c.t.Logf("etcd %s log (end):\n%s", m.Name, m.tail())
		}
	}
}

// Etcdctl runs etcdctl against the cluster's members (with the test's
// client certificate for TLS) and returns its output. It skips t where
// there is no etcdctl (Debian: etcd-client).
func (c *Cluster) Etcdctl(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Skip("no etcdctl on PATH (Debian: apt-get install etcd-client)")
	}
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	full := []string{"--endpoints", strings.Join(eps, ","), "--dial-timeout", "5s", "--command-timeout", "10s"}
	if c.tls != nil {
		full = append(full, "--cacert", c.tls.CA, "--cert", c.tls.ClientCert, "--key", c.tls.ClientKey)
	}
	cmd := exec.Command(bin, append(full, args...)...)
	cmd.Env = append(append(os.Environ(), "ETCDCTL_API=3"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
