//go:build linux

package lease

// Tests of the standby line (package line). The line is a hint: the lease
// is safe without it (the stress tests cover that). These tests check that
// the line does its job, and each fails if it does not: the standbys poll
// once an hour unless a test says otherwise, so only the standby that heads
// the line, the one that watches the version directory, can take a release
// within the tests' bounds, and only the line's moves can make a new head.
//
// The standbys are real processes where it matters (locks of processes that
// die or freeze): the test binary re-executes itself as TestLineStandby,
// which waits for the lease, says so on its standard output, and releases
// the lease when told to on its standard input. What holds which gate, and
// who watches what, is read from /proc/locks and /proc/PID/fdinfo.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/fakeclock"
	"github.com/leaserun/leaserun/internal/procstat"
	"github.com/leaserun/leaserun/lease/internal/line"
)

// lineStandbyEnv carries, to a standby process, its lineStandbyConfig.
const lineStandbyEnv = "LEASE_TEST_LINE_STANDBY"

// lineBound bounds every wait for a condition: a hang, not a timing.
const lineBound = time.Minute

type lineStandbyConfig struct {
	Path string
	TTL  time.Duration
	Poll time.Duration
}

// TestLineStandby is a standby process of the line tests; it does nothing
// unless started by them. It prints "line-standby acquired PID" once it
// holds the lease, releases it on a line on its standard input, and gives
// up waiting when its standard input ends.
func TestLineStandby(t *testing.T) {
	conf := os.Getenv(lineStandbyEnv)
	if conf == "" {
		t.Skip("a standby process of the line tests; runs only when they start it")
	}
	var cfg lineStandbyConfig
	if err := json.Unmarshal([]byte(conf), &cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		if sc.Scan() {
			close(release)
			return
		}
		cancel()
	}()
	l, err := Wait(ctx, cfg.Path, cfg.TTL, WithPollInterval(cfg.Poll))
	if ctx.Err() != nil {
		return // told to go
	}
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	fmt.Printf("line-standby acquired %d\n", os.Getpid())
	select {
	case <-release:
	case <-ctx.Done():
	}
	if err := l.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

// lineRig is a lease and standby processes waiting for it.
type lineRig struct {
	t        *testing.T
	path     string
	cfg      lineStandbyConfig
	acquired chan int // pids of standbys that took the lease

	mu   sync.Mutex
	live map[int]*lineProc // standbys still waiting (not killed, not holding)
	all  map[int]*lineProc
}

type lineProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// heldLocalLease makes a lease on a local filesystem, where standbys line
// up, held by the test itself for ttl. It skips the test elsewhere.
func heldLocalLease(t *testing.T, ttl time.Duration) (path string, holder *Lease) {
	t.Helper()
	dir := t.TempDir()
	if !line.LocalFS(dir) {
		t.Skipf("%s is not on a local filesystem (ext4, xfs, btrfs, f2fs, tmpfs), where standbys line up", dir)
	}
	path = filepath.Join(dir, "lease")
	holder, err := Acquire(path, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return path, holder
}

// newLineRig makes a lease held by the test itself, for ttl; its standbys
// will poll every poll.
func newLineRig(t *testing.T, ttl, poll time.Duration) (*lineRig, *Lease) {
	t.Helper()
	path, holder := heldLocalLease(t, ttl)
	r := &lineRig{t: t, path: path, cfg: lineStandbyConfig{Path: path, TTL: ttl, Poll: poll},
		acquired: make(chan int, 100), live: map[int]*lineProc{}, all: map[int]*lineProc{}}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for pid, p := range r.all {
			syscall.Kill(pid, syscall.SIGCONT)
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return r, holder
}

// start starts n standbys, one after another.
func (r *lineRig) start(n int) {
	r.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		r.t.Fatal(err)
	}
	conf, err := json.Marshal(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	for range n {
		cmd := exec.Command(exe, "-test.run=^TestLineStandby$", "-test.count=1")
		cmd.Env = append(os.Environ(), lineStandbyEnv+"="+string(conf))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			r.t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			r.t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			r.t.Fatal(err)
		}
		pid := cmd.Process.Pid
		r.mu.Lock()
		r.live[pid] = &lineProc{cmd: cmd, stdin: stdin}
		r.all[pid] = r.live[pid]
		r.mu.Unlock()
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), "line-standby acquired "); ok {
					if p, err := strconv.Atoi(rest); err == nil && p == pid {
						r.acquired <- pid
					}
				}
			}
		}()
	}
}

// gone takes pid off the standbys still waiting.
func (r *lineRig) gone(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, pid)
}

func (r *lineRig) livePids() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pids []int
	for pid := range r.live {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

// nextAcquirer waits for a standby to take the lease and takes it off the
// waiting ones.
func (r *lineRig) nextAcquirer(what string) int {
	r.t.Helper()
	select {
	case pid := <-r.acquired:
		r.gone(pid)
		return pid
	case <-time.After(lineBound):
		r.t.Fatalf("%s: no standby took the lease within %v; the line: %v", what, lineBound, r.state())
		return 0
	}
}

// noOtherAcquirer checks that no other standby has said that it took the
// lease.
func (r *lineRig) noOtherAcquirer(what string) {
	r.t.Helper()
	select {
	case pid := <-r.acquired:
		r.t.Fatalf("%s: standby %d took the lease as well", what, pid)
	default:
	}
}

// release tells the standby pid, which holds the lease, to release it.
func (r *lineRig) release(pid int) {
	r.t.Helper()
	r.mu.Lock()
	p := r.all[pid]
	r.mu.Unlock()
	if _, err := io.WriteString(p.stdin, "release\n"); err != nil {
		r.t.Fatal(err)
	}
}

// kill sends sig to the standby pid. After SIGSTOP it waits until every
// thread of the process has stopped: a signal takes effect only once each
// thread notices it.
func (r *lineRig) kill(pid int, sig syscall.Signal) {
	r.t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		r.t.Fatal(err)
	}
	switch sig {
	case syscall.SIGKILL:
		r.gone(pid)
	case syscall.SIGSTOP:
		for deadline := time.Now().Add(lineBound); !stopped(pid); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				r.t.Fatalf("standby %d did not stop within %v", pid, lineBound)
			}
		}
	}
}

// stopped reports whether every thread of pid is stopped (state T in
// /proc/PID/task/TID/stat).
func stopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		if s, err := procstat.Parse(b); err != nil || s.State != 'T' {
			return false
		}
	}
	return true
}

// lineState is who holds the gates and who watches what.
type lineState struct {
	head, next []int // holders of the gates' locks
	// watchers of the version directory, the gate and the next gate
	dirWatchers, gateWatchers, nextWatchers []int
	waiting                                 []int
}

func (s lineState) String() string {
	return fmt.Sprintf("gate held by %v, next gate by %v; watching the directory %v, the gate %v, the next gate %v; waiting %v",
		s.head, s.next, s.dirWatchers, s.gateWatchers, s.nextWatchers, s.waiting)
}

func (r *lineRig) state() lineState {
	dir := r.path + ".d"
	s := lineState{
		head:    flockHolders(filepath.Join(dir, line.GateName)),
		next:    flockHolders(filepath.Join(dir, line.NextName)),
		waiting: r.livePids(),
	}
	dirIno, gateIno, nextIno := inode(dir), inode(filepath.Join(dir, line.GateName)), inode(filepath.Join(dir, line.NextName))
	for _, pid := range s.waiting {
		w := inotifyWatches(pid)
		if dirIno != 0 && w[dirIno] {
			s.dirWatchers = append(s.dirWatchers, pid)
		}
		if gateIno != 0 && w[gateIno] {
			s.gateWatchers = append(s.gateWatchers, pid)
		}
		if nextIno != 0 && w[nextIno] {
			s.nextWatchers = append(s.nextWatchers, pid)
		}
	}
	return s
}

// settled reports whether the line is in order: one waiting standby holds
// the gate and alone watches the version directory; another holds the next
// gate and alone (beside the head, which may have been next before) watches
// the gate; every other one watches the next gate only.
func (s lineState) settled() bool {
	if len(s.head) != 1 || len(s.next) != 1 || s.head[0] == s.next[0] {
		return false
	}
	head, next := s.head[0], s.next[0]
	if !slices.Contains(s.waiting, head) || !slices.Contains(s.waiting, next) {
		return false
	}
	if !slices.Equal(s.dirWatchers, []int{head}) {
		return false
	}
	for _, pid := range s.waiting {
		if pid == head {
			continue
		}
		watchesGate := slices.Contains(s.gateWatchers, pid)
		if pid == next && !watchesGate || pid != next && (watchesGate || !slices.Contains(s.nextWatchers, pid)) {
			return false
		}
	}
	return true
}

// waitSettled waits until the line is in order and ok(state) holds.
func (r *lineRig) waitSettled(what string, ok func(lineState) bool) lineState {
	r.t.Helper()
	deadline := time.Now().Add(lineBound)
	for {
		s := r.state()
		if s.settled() && (ok == nil || ok(s)) {
			return s
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: the line did not settle within %v: %v", what, lineBound, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inode is the inode number of name, or 0.
func inode(name string) uint64 {
	var st unix.Stat_t
	if unix.Stat(name, &st) != nil {
		return 0
	}
	return st.Ino
}

// flockHolders lists the processes that hold a flock(2) of name, from
// /proc/locks ("1: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF";
// blocked requests have "->" after the number).
func flockHolders(name string) []int {
	var st unix.Stat_t
	if unix.Stat(name, &st) != nil {
		return nil
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil
	}
	var pids []int
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == want {
			if pid, err := strconv.Atoi(f[4]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	slices.Sort(pids)
	return pids
}

// inotifyWatches returns the inodes that pid's inotify descriptors watch,
// from /proc/PID/fdinfo ("inotify wd:1 ino:1a2b sdev:... mask:...").
func inotifyWatches(pid int) map[uint64]bool {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	inos := map[uint64]bool{}
	for _, fd := range fds {
		b, err := os.ReadFile(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "inotify ") {
				continue
			}
			for _, f := range strings.Fields(line) {
				if hex, ok := strings.CutPrefix(f, "ino:"); ok {
					if ino, err := strconv.ParseUint(hex, 16, 64); err == nil {
						inos[ino] = true
					}
				}
			}
		}
	}
	return inos
}

// TestLineHandsOffInOrder: of twenty standby processes, one heads the line
// and alone watches the version directory, one is next in line, and the
// others wait behind. A release is taken by the head alone (the others
// poll once an hour), and the line moves up at once: a new head and a new
// next (usually the next moves up, but one behind may take the place first
// as the head leaves, which the line allows: it is a hint, not a queue).
// The line keeps handing the lease on, also when the head or the next
// standby is killed.
func TestLineHandsOffInOrder(t *testing.T) {
	r, holder := newLineRig(t, time.Hour, time.Hour)
	r.start(20)
	s := r.waitSettled("twenty standbys", func(s lineState) bool { return len(s.waiting) == 20 })

	// A release: the head takes the lease, and the line moves up.
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	took, s2 := r.takenByHead("the holder released", s.head[0])

	// Again, from the standby that took the lease: the line moved on.
	r.release(took)
	took2, s3 := r.takenByHead("the first standby released", s2.head[0])

	// The head is killed: another standby leads.
	r.kill(s3.head[0], syscall.SIGKILL)
	s4 := r.waitSettled("after the head was killed", func(s4 lineState) bool { return s4.head[0] != s3.head[0] })

	// The next standby is killed: another one takes its place.
	r.kill(s4.next[0], syscall.SIGKILL)
	s5 := r.waitSettled("after the next standby was killed", func(s5 lineState) bool {
		return s5.head[0] == s4.head[0] && s5.next[0] != s4.next[0]
	})

	// The line still works.
	r.release(took2)
	r.takenByHead("the second standby released", s5.head[0])
}

// takenByHead checks, after what released the lease, that head took it and
// no other standby did, and that the line then settled with a new head. It
// returns the standby that took the lease and the settled line.
func (r *lineRig) takenByHead(what string, head int) (int, lineState) {
	r.t.Helper()
	took := r.nextAcquirer(what)
	if took != head {
		r.t.Fatalf("%s: standby %d took the lease, not the head %d", what, took, head)
	}
	after := r.waitSettled("after "+what, func(s lineState) bool { return s.head[0] != took })
	r.noOtherAcquirer(what)
	return took, after
}

// TestLineFrozen: a frozen standby at the head of the line, or next in
// line, does not stop the others. They poll (here five times a second): a
// release is taken within a poll although the head is frozen, and when the
// head dies while the next standby is frozen, another standby takes the
// lead at its poll.
func TestLineFrozen(t *testing.T) {
	r, holder := newLineRig(t, time.Hour, 200*time.Millisecond)
	r.start(5)
	s := r.waitSettled("five standbys", func(s lineState) bool { return len(s.waiting) == 5 })

	frozen := s.head[0]
	r.kill(frozen, syscall.SIGSTOP)
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	took := r.nextAcquirer("the holder released while the head was frozen")
	if took == frozen {
		t.Fatalf("the frozen head %d took the lease", took)
	}
	r.kill(frozen, syscall.SIGCONT)
	s2 := r.waitSettled("after the head thawed", nil)
	if s2.head[0] != frozen {
		t.Fatalf("the thawed head %d lost its place to %d", frozen, s2.head[0])
	}
	r.noOtherAcquirer("the holder released while the head was frozen")

	// Freeze the next standby and kill the head: its gate's close wakes
	// only the frozen one, so only a poll of the others can make a new head.
	frozen = s2.next[0]
	r.kill(frozen, syscall.SIGSTOP)
	r.kill(s2.head[0], syscall.SIGKILL)
	deadline := time.Now().Add(lineBound)
	for {
		s3 := r.state()
		if len(s3.head) == 1 && s3.head[0] != frozen && slices.Contains(s3.waiting, s3.head[0]) &&
			slices.Equal(s3.dirWatchers, s3.head) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no standby took the lead within %v while the next one was frozen: %v", lineBound, s3)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.kill(frozen, syscall.SIGCONT)
	r.noOtherAcquirer("the head was killed")
}

// inProcessWait is a Wait in a goroutine of this process, on its own fake
// clock, polling once an hour.
type inProcessWait struct {
	clk    *fakeclock.Clock
	cancel context.CancelFunc
	res    chan error
	l      *Lease
}

func startInProcessWait(t *testing.T, path string) *inProcessWait {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &inProcessWait{clk: fakeclock.New(time.Now()), cancel: cancel, res: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l, err := Wait(ctx, path, time.Hour, WithClock(w.clk), WithPollInterval(time.Hour))
		w.l = l
		w.res <- err
	}()
	t.Cleanup(func() { cancel(); <-done })
	bound, stop := context.WithTimeout(context.Background(), lineBound)
	defer stop()
	if err := w.clk.BlockUntil(bound, 1); err != nil {
		t.Fatal("Wait did not wait on its clock")
	}
	return w
}

// returned reports whether the wait returned, failing the test if it
// failed.
func (w *inProcessWait) returned(t *testing.T) bool {
	t.Helper()
	select {
	case err := <-w.res:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		return true
	default:
		return false
	}
}

// waitReturn waits until the wait returns, failing the test if it does not
// within the bound.
func (w *inProcessWait) waitReturn(t *testing.T, what string) {
	t.Helper()
	select {
	case err := <-w.res:
		if err != nil {
			t.Fatalf("%s: Wait: %v", what, err)
		}
	case <-time.After(lineBound):
		t.Fatalf("%s: Wait did not return within %v", what, lineBound)
	}
}

// dirWatches counts this process's inotify watches on dir.
func dirWatches(dir string) int {
	ino := inode(dir)
	n := 0
	fds, _ := os.ReadDir("/proc/self/fdinfo")
	for _, fd := range fds {
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", fd.Name()))
		if err == nil && strings.Contains(string(b), fmt.Sprintf(" ino:%x ", ino)) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(lineBound); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, lineBound)
		}
	}
}

// TestLineLeaveWakesNext: Waits in one process line up as well (flock locks
// belong to open files, not processes). A head whose context ends leaves
// the line and the next Wait leads at once; one that takes the lease leaves
// it too.
func TestLineLeaveWakesNext(t *testing.T) {
	path, holder := heldLocalLease(t, time.Hour)
	a := startInProcessWait(t, path)
	b := startInProcessWait(t, path)
	c := startInProcessWait(t, path)
	waitFor(t, "one Wait watching the version directory", func() bool { return dirWatches(path+".d") == 1 })

	a.cancel() // the head gives up
	a.waitReturnErr(t)
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	b.waitReturn(t, "the head gave up, then the holder released")
	if c.returned(t) {
		t.Fatal("the Wait behind the next one took the lease as well")
	}
	if err := b.l.Release(); err != nil {
		t.Fatal(err)
	}
	c.waitReturn(t, "the second Wait released")
	if err := c.l.Release(); err != nil {
		t.Fatal(err)
	}
}

// waitReturnErr waits until a cancelled wait returns its error.
func (w *inProcessWait) waitReturnErr(t *testing.T) {
	t.Helper()
	select {
	case err := <-w.res:
		if err == nil {
			t.Fatal("a cancelled Wait took the lease")
		}
	case <-time.After(lineBound):
		t.Fatalf("a cancelled Wait did not return within %v", lineBound)
	}
}

// TestLineFallsBack: where the gate cannot be used (here a directory stands
// in its place), there is no line and every Wait watches the version
// directory itself, as where there is no line at all.
func TestLineFallsBack(t *testing.T) {
	for _, name := range []string{line.GateName, line.NextName} {
		t.Run(name, func(t *testing.T) {
			path, holder := heldLocalLease(t, time.Hour)
			if err := os.Mkdir(filepath.Join(path+".d", name), 0o755); err != nil {
				t.Fatal(err)
			}
			a := startInProcessWait(t, path)
			b := startInProcessWait(t, path)
			waitFor(t, "both Waits watching the version directory", func() bool { return dirWatches(path+".d") == 2 })
			if err := holder.Release(); err != nil {
				t.Fatal(err)
			}
			first, second := a, b
			select {
			case err := <-a.res:
				if err != nil {
					t.Fatal(err)
				}
			case err := <-b.res:
				if err != nil {
					t.Fatal(err)
				}
				first, second = b, a
			case <-time.After(lineBound):
				t.Fatalf("no Wait took the released lease within %v", lineBound)
			}
			if err := first.l.Release(); err != nil {
				t.Fatal(err)
			}
			second.waitReturn(t, "the first Wait released")
			if err := second.l.Release(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWatchReportsVersionsOnly: the creation of a version is reported
// with its number; temp files, the gates and other names that come and go
// in the version directory, and files written in its parent (PATH, by every
// write), are not news, and do not make the standby read the lease as a
// change of the directory would (a report of math.MaxUint64).
func TestWatchReportsVersionsOnly(t *testing.T) {
	path, _ := heldLocalLease(t, time.Hour)
	dir := path + ".d"
	c := newFileStore(path).Watch(context.Background()).(*fileWatch)
	defer c.Close()
	if !c.line.Leads() || !c.Complete() {
		t.Fatal("the only standby does not lead, or does not watch the directory")
	}
	for _, name := range []string{filepath.Join(dir, "tmp", "x"), filepath.Join(dir, "07"), filepath.Join(dir, line.GateName+".x"), path + ".other"} {
		if err := os.WriteFile(name, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(path+".other", path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "9"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.d.n.c:
	case <-time.After(lineBound):
		t.Fatalf("the creation of version 9 was not reported within %v", lineBound)
	}
	if got := c.d.n.newest.Load(); got != 9 {
		t.Fatalf("newest reported %d, want 9", got)
	}
}

// TestGatesSurviveCleanup: the gates are not versions and not temp files,
// so the cleanup of old files never removes them, however old (a removed
// gate would split the line in two: the standbys that opened it before,
// and those that create it anew).
func TestGatesSurviveCleanup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease")
	l, err := Acquire(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-24 * time.Hour)
	for _, name := range []string{line.GateName, line.NextName} {
		gate := filepath.Join(path+".d", name)
		if err := os.WriteFile(gate, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(gate, old, old); err != nil {
			t.Fatal(err)
		}
	}
	for range 300 { // past every cleanup period
		if err := l.Renew(); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{line.GateName, line.NextName} {
		if _, err := os.Stat(filepath.Join(path+".d", name)); err != nil {
			t.Fatalf("after 300 renewals: %v", err)
		}
	}
}
