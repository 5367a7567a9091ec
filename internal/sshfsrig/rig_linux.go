//go:build linux

package sshfsrig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sftpServerPaths are the places Debian, Fedora and others install OpenSSH's
// sftp-server.
var sftpServerPaths = []string{
	"/usr/lib/openssh/sftp-server",
	"/usr/lib/sftp-server",
	"/usr/libexec/sftp-server",
	"/usr/libexec/openssh/sftp-server",
}

// sshfsOptions are passed to every sshfs mount (besides directport).
//
//   - dir_cache=no: sshfs must not answer lookups, stats or readdirs from
//     its own cache; every one goes to the server.
//   - entry_timeout=0, attr_timeout=0, negative_timeout=0: neither may the
//     kernel's FUSE dentry/attribute caches, so a change made through one
//     mount is seen by the next operation through another.
//   - max_conns=1 (the default, stated so it stays true): one TCP connection,
//     hence exactly one sftp-server process, per mount.
//
// Deliberately absent: reconnect (a dead server must look dead, not be
// silently replaced), kernel_cache/auto_cache (would keep stale page cache
// across opens), workaround=rename (not needed: OpenSSH's sftp-server offers
// posix-rename@openssh.com, so rename replaces the target atomically) and
// allow_other (tests run as the mounting user).
const sshfsOptions = "dir_cache=no,entry_timeout=0,attr_timeout=0,negative_timeout=0,max_conns=1"

// mountOptions returns sshfsOptions with extra, a comma-separated list of
// key=value options, merged in: an option of extra replaces the default of
// the same name, and any other is added.
func mountOptions(extra string) string {
	opts := strings.Split(sshfsOptions, ",")
	for _, o := range strings.Split(extra, ",") {
		if o == "" {
			continue
		}
		key, _, _ := strings.Cut(o, "=")
		i := slices.IndexFunc(opts, func(d string) bool { k, _, _ := strings.Cut(d, "="); return k == key })
		if i >= 0 {
			opts[i] = o
		} else {
			opts = append(opts, o)
		}
	}
	return strings.Join(opts, ",")
}

// startTimeout bounds each step of bringing a mount up and each step of
// tearing it down. It is generous: it only matters when something is broken.
const startTimeout = 20 * time.Second

// fuseSuperMagic is statfs(2)'s f_type for FUSE filesystems.
const fuseSuperMagic = 0x65735546

// capSysAdmin is the bit number of CAP_SYS_ADMIN in the capability sets.
const capSysAdmin = 21

// Available reports whether the rig can run on this machine: nil when the
// sshfs and sftp-server binaries exist, /dev/fuse can be opened, and the
// process may mount (it has CAP_SYS_ADMIN, or a fusermount helper exists).
// Otherwise the error names everything that is missing.
func Available() error {
	var missing []error
	if _, err := exec.LookPath("sshfs"); err != nil {
		missing = append(missing, fmt.Errorf("sshfs not found in PATH (apt-get install sshfs)"))
	}
	if _, err := sftpServer(); err != nil {
		missing = append(missing, err)
	}
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		missing = append(missing, fmt.Errorf("cannot open /dev/fuse: %w", err))
	} else {
		f.Close()
	}
	if !canMountDirectly() && fusermount() == "" {
		missing = append(missing, fmt.Errorf("not permitted to mount: need root with CAP_SYS_ADMIN (euid %d) or fusermount3/fusermount in PATH", os.Geteuid()))
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("sshfsrig unavailable: %w", errors.Join(missing...))
}

// sftpServer returns the path of OpenSSH's sftp-server binary.
func sftpServer() (string, error) {
	for _, p := range sftpServerPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("sftp-server not found at any of %s (apt-get install openssh-sftp-server)", strings.Join(sftpServerPaths, ", "))
}

// fusermount returns the path of fusermount3 or fusermount, or "".
func fusermount() string {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// canMountDirectly reports whether the process is root with CAP_SYS_ADMIN in
// its effective set, which is what libfuse needs to call mount(2) itself.
func canMountDirectly() bool {
	if os.Geteuid() != 0 {
		return false
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return true // No way to tell; assume a plain root.
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err != nil || caps&(1<<capSysAdmin) != 0
		}
	}
	return true
}

// proc is a started child process whose exit is observable through done.
type proc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // Read only after done is closed.
	done   chan struct{}
	err    error // Set before done is closed.
}

func startProc(cmd *exec.Cmd, deathSig syscall.Signal) (*proc, error) {
	p := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	// If the test binary dies without running cleanups (timeout panic,
	// SIGKILL), the kernel signals the children. SIGTERM lets sshfs unmount
	// itself; sftp-server gets SIGKILL, which works even while stopped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: deathSig}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// describe returns how the process ended and what it wrote to stderr. It
// must only be called after done is closed.
func (p *proc) describe() string {
	return fmt.Sprintf("%s exited (%v); stderr: %q", filepath.Base(p.cmd.Path), p.err, strings.TrimSpace(p.stderr.String()))
}

// stop ends the process: politely with sig, then with SIGKILL if it has not
// exited within grace. It reports whether SIGKILL was needed.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) (killed bool) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return true
}

// mountState is everything that cleanup needs to undo for one mount.
type mountState struct {
	path   string
	sshfs  *proc
	server *proc
}

// Start creates a fresh temporary directory (Rig.Dir) and mounts it n times
// with sshfs, each mount served by its own sftp-server process over its own
// loopback TCP connection. It returns once every mount is live.
//
// If Available reports an error, Start skips the test with that reason. Any
// other failure (a mount that does not come up within 20s, a process that
// exits early) fails the test with tb.Fatal.
//
// Start registers a cleanup on tb that resumes stopped servers, lazily
// unmounts every mount, stops sshfs and the servers, and fails the test if a
// mount is nevertheless left behind. It runs whether the test passed, failed
// or left a server stopped. Rig.Dir and the mount points are removed after
// that by tb.TempDir's own cleanup.
//
// Semantics, as observed with sshfs 3.7 and OpenSSH's sftp-server: files and
// directory entries created, renamed or removed through one mount are visible
// to the next operation through any other mount; O_CREAT|O_EXCL, link(2) and
// rename(2) are performed atomically by the server on the real directory, so
// O_EXCL and link onto an existing name fail with EEXIST and rename replaces
// an existing target. flock(2) and fcntl locks are NOT shared between mounts:
// sshfs does not implement locking, so the kernel keeps locks local to each
// mount, like a network filesystem without a lock manager. Written data is
// guaranteed to have reached the server when close(2) returns (close-to-open
// consistency), not necessarily when write(2) returns.
func Start(tb testing.TB, n int) *Rig {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("sshfsrig.Start: need at least one mount, got %d", n)
	}
	return StartHosts(tb, make([]string, n)...)
}

// StartHosts is Start with options of its own for each mount: one mount per
// element of options, each a comma-separated list of sshfs and FUSE options
// ("" for none) that replace the rig's defaults of the same name or add to
// them. NegativeCache makes a host whose client caches failed lookups.
func StartHosts(tb testing.TB, options ...string) *Rig {
	tb.Helper()
	if err := Available(); err != nil {
		tb.Skip(err)
	}
	if len(options) < 1 {
		tb.Fatalf("sshfsrig.StartHosts: need at least one mount, got none")
	}
	server, err := sftpServer()
	if err != nil {
		tb.Fatal(err) // Unreachable: Available checked.
	}

	// Register TempDir before our cleanup so that (cleanups being LIFO) the
	// directories are removed only after everything is unmounted.
	base := tb.TempDir()
	rig := &Rig{Dir: filepath.Join(base, "shared")}
	if err := os.Mkdir(rig.Dir, 0o755); err != nil {
		tb.Fatal(err)
	}

	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("sshfsrig: listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port

	var states []*mountState
	tb.Cleanup(func() {
		ln.Close()
		teardown(tb, states)
	})

	for i, extra := range options {
		st := &mountState{path: filepath.Join(base, fmt.Sprintf("mnt%d", i))}
		if err := os.Mkdir(st.path, 0o755); err != nil {
			tb.Fatal(err)
		}
		states = append(states, st)
		opts := mountOptions(extra)
		mountOne(tb, ln, port, server, rig.Dir, opts, st)
		rig.Mounts = append(rig.Mounts, Mount{Path: st.path, ServerPID: st.server.cmd.Process.Pid, Options: opts})
	}
	// Every mount holds its one connection; nobody else should connect.
	ln.Close()
	return rig
}

// mountOne starts sshfs for st.path, accepts its connection, hands the
// connection to a new sftp-server, and waits until the mount is live.
func mountOne(tb testing.TB, ln *net.TCPListener, port int, server, dir, opts string, st *mountState) {
	tb.Helper()
	// -f keeps sshfs in the foreground as our child, so we can observe an
	// early exit and stop it during cleanup. With directport sshfs connects
	// straight to the port and speaks SFTP; no ssh client is involved.
	sshfs := exec.Command("sshfs", "-f",
		"-o", "directport="+strconv.Itoa(port),
		"-o", opts,
		"127.0.0.1:"+dir, st.path)
	var err error
	if st.sshfs, err = startProc(sshfs, syscall.SIGTERM); err != nil {
		tb.Fatalf("sshfsrig: start sshfs: %v", err)
	}

	// Mounts are brought up one at a time, so the next connection is this
	// mount's: that is what ties ServerPID to Path.
	type accepted struct {
		conn *net.TCPConn
		err  error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.AcceptTCP()
		acc <- accepted{c, err}
	}()
	var conn *net.TCPConn
	select {
	case a := <-acc:
		if a.err != nil {
			tb.Fatalf("sshfsrig: accept: %v", a.err)
		}
		conn = a.conn
	case <-st.sshfs.done:
		tb.Fatalf("sshfsrig: sshfs for %s exited before connecting: %s", st.path, st.sshfs.describe())
	case <-time.After(startTimeout):
		tb.Fatalf("sshfsrig: sshfs for %s did not connect within %v", st.path, startTimeout)
	}

	// Give sftp-server a dup of the socket as its stdin and stdout. Because
	// they are *os.File, exec passes the descriptor itself (switched to
	// blocking mode) rather than copying through pipes.
	f, err := conn.File()
	conn.Close()
	if err != nil {
		tb.Fatalf("sshfsrig: socket file: %v", err)
	}
	srv := exec.Command(server, "-e", "-d", dir)
	srv.Stdin, srv.Stdout = f, f
	st.server, err = startProc(srv, syscall.SIGKILL)
	f.Close() // Only the server holds the socket now.
	if err != nil {
		tb.Fatalf("sshfsrig: start %s: %v", server, err)
	}

	// Poll until the kernel shows a FUSE filesystem at the mount point. The
	// stat goes through sshfs to the server, so success means the whole
	// chain works.
	parent, err := os.Stat(filepath.Dir(st.path))
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		if mounted(st.path, parent) {
			return
		}
		select {
		case <-st.sshfs.done:
			tb.Fatalf("sshfsrig: sshfs for %s exited: %s; server: %s", st.path, st.sshfs.describe(), serverStatus(st.server))
		case <-st.server.done:
			tb.Fatalf("sshfsrig: sftp-server for %s: %s", st.path, st.server.describe())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sshfsrig: %s not mounted within %v", st.path, startTimeout)
		}
	}
}

func serverStatus(p *proc) string {
	select {
	case <-p.done:
		return p.describe()
	case <-time.After(time.Second):
		return "still running"
	}
}

// mounted reports whether path is a live FUSE mount on top of parent.
func mounted(path string, parent os.FileInfo) bool {
	fi, err := os.Stat(path)
	if err != nil || fi.Sys().(*syscall.Stat_t).Dev == parent.Sys().(*syscall.Stat_t).Dev {
		return false
	}
	var sfs syscall.Statfs_t
	return syscall.Statfs(path, &sfs) == nil && sfs.Type == fuseSuperMagic
}

// teardown undoes whatever part of Start succeeded. It must leave no mount
// behind even if servers are stopped or operations are hung on the mounts.
func teardown(tb testing.TB, states []*mountState) {
	// A stopped server would stall anything that still needs it.
	for _, st := range states {
		if st.server != nil {
			_ = st.server.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	// Detach lazily first: this cannot block on the server or fail with
	// EBUSY, and guarantees the mount point is free whatever happens next.
	for _, st := range states {
		if st.sshfs != nil && inMountTable(st.path) {
			unmount(tb, st.path)
		}
	}
	// sshfs then sees its FUSE connection end (or gets SIGTERM), exits, and
	// its server sees EOF and exits too. Killing sshfs also aborts any
	// request still hung on a detached mount.
	for _, st := range states {
		if st.sshfs != nil && st.sshfs.stop(syscall.SIGTERM, startTimeout) {
			tb.Logf("sshfsrig: had to SIGKILL sshfs for %s", st.path)
		}
		if st.server != nil {
			st.server.stop(syscall.SIGTERM, startTimeout)
		}
	}
	for _, st := range states {
		if inMountTable(st.path) {
			// Last resort, then complain: the contract is broken.
			_ = syscall.Unmount(st.path, syscall.MNT_DETACH)
			tb.Errorf("sshfsrig: %s was still mounted after cleanup", st.path)
		}
	}
}

// unmount lazily unmounts path with fusermount -u -z, or umount -l, or
// umount2(MNT_DETACH), whichever works first.
func unmount(tb testing.TB, path string) {
	var msgs []string
	var cmds [][]string
	if fm := fusermount(); fm != "" {
		cmds = append(cmds, []string{fm, "-u", "-z", path})
	}
	if um, err := exec.LookPath("umount"); err == nil {
		cmds = append(cmds, []string{um, "-l", path})
	}
	for _, c := range cmds {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err == nil {
			return
		}
		msgs = append(msgs, fmt.Sprintf("%s: %v: %s", strings.Join(c, " "), err, bytes.TrimSpace(out)))
	}
	err := syscall.Unmount(path, syscall.MNT_DETACH)
	if err == nil {
		return
	}
	msgs = append(msgs, fmt.Sprintf("umount2(%s, MNT_DETACH): %v", path, err))
	tb.Errorf("sshfsrig: cannot unmount %s: %s", path, strings.Join(msgs, "; "))
}

// inMountTable reports whether path is a mount point according to
// /proc/self/mountinfo. If the table cannot be read it answers true, so that
// callers err on the side of unmounting and complaining.
func inMountTable(path string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	for line := range strings.Lines(string(data)) {
		// Fields: ID parentID major:minor root mountpoint ...
		fields := strings.Fields(line)
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == path {
			return true
		}
	}
	return false
}

// unescapeMountinfo undoes the octal escaping (\040 for space and so on)
// that the kernel applies to paths in /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
