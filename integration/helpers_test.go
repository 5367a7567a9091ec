//go:build linux

package integration

// Shared helpers of the race_, kill_, freeze_ and sshfs_ tests: a child role
// of the test binary that leaserun runs as its command and that logs what it
// does with CLOCK_MONOTONIC timestamps, a parser for that log, a wrapper
// around leaserun processes, a process-death watcher (pidfd) and the
// interval-overlap checker.
//
// All timestamps are CLOCK_MONOTONIC nanoseconds (system-wide, so comparable
// between processes), except where a field says "wall".

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/procstat"
)

// Environment of the child role. The test sets them on leaserun, which
// passes its environment on to the child.
const (
	e2eEnvRole       = "LEASERUN_E2E_ROLE"        // "child" selects the role ("subreaper" and "shell": see e2eSubreaperMain, e2eShellMain)
	e2eEnvLog        = "LEASERUN_E2E_LOG"         // the file the child appends its events to
	e2eEnvHold       = "LEASERUN_E2E_HOLD"        // how long to run (a Go duration)
	e2eEnvHoldUntil  = "LEASERUN_E2E_HOLD_UNTIL"  // or: run until this file exists (HOLD caps it)
	e2eEnvHeartbeat  = "LEASERUN_E2E_HEARTBEAT"   // log a heartbeat this often (0: none)
	e2eEnvExit       = "LEASERUN_E2E_EXIT"        // the status to exit with
	e2eEnvIgnoreTerm = "LEASERUN_E2E_IGNORE_TERM" // "1": log SIGTERM and carry on
	e2eEnvOld        = "LEASERUN_E2E_OLD"         // "pid:starttime" of a process that must be dead when the child starts
)

func init() {
	// The test binary re-executed by leaserun as its command: be the child,
	// before the testing package (or TestMain) gets a say.
	switch os.Getenv(e2eEnvRole) {
	case "child":
		os.Exit(e2eChildMain())
	case "subreaper":
		os.Exit(e2eSubreaperMain())
	case "shell":
		os.Exit(e2eShellMain())
	}
}

// monoNow is CLOCK_MONOTONIC in nanoseconds.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// wallNow is CLOCK_REALTIME in nanoseconds since the Unix epoch.
func wallNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// e2eChildMain is the child role. Every event is one line, appended with a
// single write(2) to an O_APPEND file, so lines never mix:
//
//	KIND MONO WALL PID EPOCH INSTANCE [EXTRA]
//
// KIND is start (EXTRA: "old-alive" if the process named by e2eEnvOld was
// still running when the child began), hb, term, or end (EXTRA: the exit
// status).
func e2eChildMain() int {
	fd, err := unix.Open(os.Getenv(e2eEnvLog), unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_CLOEXEC, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e child: open log: %v\n", err)
		return 111
	}
	pid := os.Getpid()
	epoch := cmp.Or(os.Getenv("LEASERUN_EPOCH"), "-")
	inst := cmp.Or(os.Getenv("LEASERUN_INSTANCE_ID"), "-")
	emit := func(kind, extra string) {
		mono, wall := monoNow(), wallNow()
		line := fmt.Sprintf("%s %d %d %d %s %s %s\n", kind, mono, wall, pid, epoch, inst, extra)
		if _, err := unix.Write(fd, []byte(line)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e child: write log: %v\n", err)
			os.Exit(112)
		}
	}
	if os.Getenv(e2eEnvIgnoreTerm) == "1" {
		c := make(chan os.Signal, 16)
		signal.Notify(c, syscall.SIGTERM)
		go func() {
			for range c {
				emit("term", "")
			}
		}()
	}
	hold, _ := time.ParseDuration(os.Getenv(e2eEnvHold))
	hb, _ := time.ParseDuration(os.Getenv(e2eEnvHeartbeat))
	until := os.Getenv(e2eEnvHoldUntil)
	code, _ := strconv.Atoi(os.Getenv(e2eEnvExit))

	// Check the old process first and only then take the start timestamp:
	// a process found dead stays dead, and one found alive was alive while
	// this child was already running.
	extra := ""
	if old := os.Getenv(e2eEnvOld); old != "" && e2eAlive(old) {
		extra = "old-alive"
	}
	emit("start", extra)
	deadline := time.Now().Add(hold)
	step := 2 * time.Millisecond
	if hb > 0 {
		step = min(step, hb)
	}
	nextHB := time.Now()
	for {
		now := time.Now()
		if hb > 0 && !now.Before(nextHB) {
			emit("hb", "")
			nextHB = now.Add(hb)
		}
		if !now.Before(deadline) {
			break
		}
		if until != "" {
			if _, err := os.Stat(until); err == nil {
				break
			}
		} else if hb == 0 {
			time.Sleep(time.Until(deadline))
			continue
		}
		time.Sleep(step)
	}
	emit("end", strconv.Itoa(code))
	return code
}

// e2eAlive reports whether the process "pid:starttime" is running (not a
// zombie): the start time guards against a reused pid.
func e2eAlive(old string) bool {
	pidS, start, _ := strings.Cut(old, ":")
	pid, _ := strconv.Atoi(pidS)
	s, err := procstat.Read(pid)
	return err == nil && strconv.FormatUint(s.StartTime, 10) == start && s.Alive()
}

// e2eEvent is one line of a child's log.
type e2eEvent struct {
	Kind  string
	Mono  int64 // CLOCK_MONOTONIC ns
	Wall  int64 // CLOCK_REALTIME ns
	Extra string
}

// e2eChildLog is what one child logged.
type e2eChildLog struct {
	Path     string
	PID      int
	Epoch    uint64
	Instance string
	Start    *e2eEvent
	End      *e2eEvent // nil if the child did not exit by itself
	HBs      []e2eEvent
	Terms    []e2eEvent
}

// Last is the child's last logged activity.
func (c *e2eChildLog) Last() e2eEvent {
	last := *c.Start
	for _, e := range slices.Concat(c.HBs, c.Terms) {
		if e.Mono > last.Mono {
			last = e
		}
	}
	if c.End != nil && c.End.Mono > last.Mono {
		last = *c.End
	}
	return last
}

// ExitCode is the status the child logged it would exit with.
func (c *e2eChildLog) ExitCode() (int, bool) {
	if c.End == nil {
		return 0, false
	}
	n, err := strconv.Atoi(c.End.Extra)
	return n, err == nil
}

// e2eReadChildLog parses a child's log. It returns an error satisfying
// os.IsNotExist when the child never started, and one when the log has no
// start line (the child may still be starting).
func e2eReadChildLog(path string) (*e2eChildLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &e2eChildLog{Path: path}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break // a line without its newline is still being written
		}
		if err != nil {
			return nil, err
		}
		line = strings.TrimSuffix(line, "\n")
		fs := strings.SplitN(line, " ", 7)
		if len(fs) != 7 {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		var e e2eEvent
		e.Kind, e.Extra = fs[0], fs[6]
		var err1, err2, err3 error
		e.Mono, err1 = strconv.ParseInt(fs[1], 10, 64)
		e.Wall, err2 = strconv.ParseInt(fs[2], 10, 64)
		c.PID, err3 = strconv.Atoi(fs[3])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s: bad line %q: %v", path, line, err)
		}
		c.Epoch, _ = strconv.ParseUint(fs[4], 10, 64)
		c.Instance = fs[5]
		switch e.Kind {
		case "start":
			c.Start = &e
		case "end":
			c.End = &e
		case "hb":
			c.HBs = append(c.HBs, e)
		case "term":
			c.Terms = append(c.Terms, e)
		default:
			return nil, fmt.Errorf("%s: bad event %q", path, line)
		}
	}
	if c.Start == nil {
		return nil, fmt.Errorf("%s: no start event (yet)", path)
	}
	return c, nil
}

// e2eChildEnv is the environment that makes the test binary the child role.
// With -race, the race runtime sleeps a second at exit by default
// (atexit_sleep_ms): the child must not linger after its end event.
func e2eChildEnv(log string, kv ...string) []string {
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return append([]string{e2eEnvRole + "=child", e2eEnvLog + "=" + log, "GORACE=" + gorace}, kv...)
}

// e2eProc is a leaserun process started by a test.
type e2eProc struct {
	cmd        *exec.Cmd
	stderrPath string // if stderr is a file
	done       chan struct{}
	err        error // of Wait; set before done is closed
	exitedMono int64 // when Wait returned
}

// e2eTestBinary is the test binary, which leaserun runs as the child role.
var e2eTestBinary = sync.OnceValues(os.Executable)

// e2eBaseEnv is the environment without LEASERUN_* variables, so that
// nothing in the test's own environment changes leaserun's settings.
func e2eBaseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEASERUN_") {
			env = append(env, kv)
		}
	}
	return env
}

// e2eStartLeaserun starts leaserun with flags, the test binary as its
// command and env added to the environment (e2eChildEnv). stdout and stderr
// go to a file in dir (a file, not a pipe: Wait then never waits for the
// child). The argv prefix, when given, runs before leaserun (prefix...
// leaserun flags... -- child). A cleanup kills the process if the test
// leaves it running. Safe to call from several goroutines.
func e2eStartLeaserun(t testing.TB, dir, name string, prefix []string, env []string, flags ...string) *e2eProc {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name+".stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return e2eStartLeaserunTo(t, dir, f, prefix, env, flags...)
}

// e2eStartLeaserunTo is e2eStartLeaserun with stdout and stderr going to
// out, which the caller closes once it has started.
func e2eStartLeaserunTo(t testing.TB, dir string, out *os.File, prefix []string, env []string, flags ...string) *e2eProc {
	t.Helper()
	bin, err := e2eTestBinary()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	argv := slices.Concat(prefix, []string{leaserunBin}, flags, []string{"--", bin})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(e2eBaseEnv(), env...)
	cmd.Dir = dir
	return e2eStart(t, cmd, out)
}

// e2eStart starts cmd with its stdout and stderr to out, and a cleanup
// that kills it if the test leaves it running.
func e2eStart(t testing.TB, cmd *exec.Cmd, out *os.File) *e2eProc {
	t.Helper()
	p := &e2eProc{cmd: cmd, done: make(chan struct{})}
	if fi, err := out.Stat(); err == nil && fi.Mode().IsRegular() {
		p.stderrPath = out.Name()
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start leaserun: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		p.exitedMono = monoNow()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("leaserun (pid %d) did not die of SIGKILL within 10s", cmd.Process.Pid)
		}
	})
	return p
}

// Stderr is what leaserun wrote so far (to a file).
func (p *e2eProc) Stderr() string {
	if p.stderrPath == "" {
		return "(not a file)"
	}
	data, _ := os.ReadFile(p.stderrPath)
	return string(data)
}

// Exited reports whether the process has exited.
func (p *e2eProc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for leaserun to exit and returns its status as a
// shell reports it (128+N for signal N). It fails the test on timeout.
func (p *e2eProc) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Errorf("leaserun (pid %d) still running after %v; stderr:\n%s", p.cmd.Process.Pid, timeout, p.Stderr())
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		<-p.done
		return -1
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// e2ePoll polls cond every few milliseconds until it holds, and fails the
// test if it still doesn't after timeout: timeouts are generous bounds that
// mean "it never happened", not performance expectations.
func e2ePoll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// e2eWaitChildStart polls until the child logging to path has started.
func e2eWaitChildStart(t testing.TB, timeout time.Duration, path string, p *e2eProc) *e2eChildLog {
	t.Helper()
	var c *e2eChildLog
	e2ePoll(t, timeout, "the child of "+filepath.Base(path)+" to start", func() bool {
		if p != nil && p.Exited() {
			t.Fatalf("leaserun exited before its child started (%v); stderr:\n%s", p.err, p.Stderr())
		}
		var err error
		c, err = e2eReadChildLog(path)
		return err == nil
	})
	return c
}

// e2eDeathWatch reports when a process has exited (it is a zombie or gone),
// observed through a pidfd, or by polling /proc where pidfds are missing.
type e2eDeathWatch struct {
	done chan struct{}
	mono int64 // when the exit was observed: an upper bound of the death
	how  string
}

// e2eWatchDeath starts watching pid. The caller must know pid is the
// process it means (it is alive and not yet reaped).
func e2eWatchDeath(t testing.TB, pid int) *e2eDeathWatch {
	w := &e2eDeathWatch{done: make(chan struct{})}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case err == nil:
		w.how = "pidfd"
		go func() {
			defer unix.Close(fd)
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for {
				n, err := unix.Poll(fds, 50)
				if n > 0 {
					w.mono = monoNow()
					close(w.done)
					return
				}
				if err != nil && err != unix.EINTR {
					panic(fmt.Sprintf("poll pidfd: %v", err))
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	case errors.Is(err, unix.ESRCH):
		w.how = "pidfd (already gone)"
		w.mono = monoNow()
		close(w.done)
	default:
		t.Logf("pidfd_open: %v: watching /proc/%d instead", err, pid)
		w.how = "/proc polling"
		go func() {
			for {
				if s, err := procstat.Read(pid); err != nil || !s.Alive() {
					w.mono = monoNow()
					close(w.done)
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		}()
	}
	return w
}

// Wait waits up to timeout for the death and reports whether it came.
func (w *e2eDeathWatch) Wait(timeout time.Duration) bool {
	select {
	case <-w.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// e2eInterval is the time one child ran: from its start to its end event.
type e2eInterval struct {
	ID         string
	Start, End int64 // CLOCK_MONOTONIC ns
	Epoch      uint64
}

// e2eCheckNoOverlap fails when any two intervals overlap, or when the epochs
// do not strictly increase in the order the intervals started (each child
// runs under an acquisition of its own, and epochs fence older holders).
func e2eCheckNoOverlap(ivs []e2eInterval) error {
	ivs = slices.Clone(ivs)
	slices.SortFunc(ivs, func(a, b e2eInterval) int { return cmp.Compare(a.Start, b.Start) })
	var errs []error
	var last e2eInterval // of those started so far, the one that ends last
	for i, iv := range ivs {
		if iv.End < iv.Start {
			errs = append(errs, fmt.Errorf("%s: ends (%d) before it starts (%d)", iv.ID, iv.End, iv.Start))
		}
		if i > 0 {
			if iv.Start <= last.End {
				errs = append(errs, fmt.Errorf("overlap: %s ran [%d, %d] and %s started at %d, %s before that ended",
					last.ID, last.Start, last.End, iv.ID, iv.Start, e2eMs(last.End-iv.Start)))
			}
			if prev := ivs[i-1]; iv.Epoch <= prev.Epoch {
				errs = append(errs, fmt.Errorf("epoch did not increase: %s (epoch %d) started after %s (epoch %d)",
					iv.ID, iv.Epoch, prev.ID, prev.Epoch))
			}
		}
		if i == 0 || iv.End > last.End {
			last = iv
		}
	}
	return errors.Join(errs...)
}

// e2eMs formats a monotonic difference for messages.
func e2eMs(d int64) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }
