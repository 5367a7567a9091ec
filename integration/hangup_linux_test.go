//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/leaserun/leaserun/internal/procstat"
	"github.com/leaserun/leaserun/internal/pty"
)

// e2eEnvJobPID names the file the shell role writes its job's pid to.
const e2eEnvJobPID = "LEASERUN_E2E_JOB_PID"

// e2eShellMain is the shell role: the job control of an interactive shell,
// and no more. Started as a session leader with the terminal as its stdin
// and controlling terminal, it runs os.Args[1:] as a job in a process group
// of its own, in the terminal's foreground, writes the job's pid to the file
// named by e2eEnvJobPID, and waits for it.
func e2eShellMain() int {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "shell:", err)
		return 98
	}
	if err := os.WriteFile(os.Getenv(e2eEnvJobPID), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "shell:", err)
		return 98
	}
	cmd.Wait()
	return 0
}

// e2eScreen is what was written to a terminal.
type e2eScreen struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *e2eScreen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *e2eScreen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// e2eGone reports whether pid has exited (a zombie, or reaped).
func e2eGone(pid int) bool {
	s, err := procstat.Read(pid)
	return err != nil || !s.Alive()
}

// After Ctrl-Z at a terminal, the child's group is stopped and leaserun
// renews the lease while the shell waits for it. If the shell then dies
// (killed, or its terminal gone), no job control is left to continue the
// child: leaserun does what the kernel does to a stopped process group that
// becomes orphaned (SIGHUP, then SIGCONT), so the child ends, and leaserun
// releases the lease and exits instead of holding it for ever.
func TestStoppedChildHungUpWhenTheShellDies(t *testing.T) {
	ptm, pts := pty.Open(t)
	dir := t.TempDir()
	lease, childPID, jobPID := filepath.Join(dir, "lease"), filepath.Join(dir, "child"), filepath.Join(dir, "job")
	bin, err := e2eTestBinary()
	if err != nil {
		t.Fatal(err)
	}
	shell := exec.Command(bin, leaserunBin, "--lease", lease, "--ttl", "3s", "--log-level", "debug", "--",
		// One process: leaserun watches its child for stops, not the rest
		// of its group (a dash that vforks a sleep would not stop while the
		// sleep is stopped).
		"sh", "-c", `echo $$ > `+childPID+`; exec sleep 1000`)
	shell.Env = append(e2eBaseEnv(), e2eEnvRole+"=shell", e2eEnvJobPID+"="+jobPID)
	shell.Stdin, shell.Stdout, shell.Stderr = pts, pts, pts
	shell.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	shellDone := make(chan struct{})
	go func() { shell.Wait(); close(shellDone) }()
	var screen e2eScreen
	go io.Copy(&screen, ptm)
	readPID := func(name string) int {
		var pid int
		e2ePoll(t, signalsPatience, filepath.Base(name)+"'s pid", func() bool {
			b, _ := os.ReadFile(name)
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil
		})
		return pid
	}
	leaserun, child := readPID(jobPID), readPID(childPID)
	t.Cleanup(func() {
		syscall.Kill(-child, syscall.SIGKILL)
		syscall.Kill(leaserun, syscall.SIGKILL)
		shell.Process.Kill()
		<-shellDone
		if t.Failed() {
		}
	})

	ptm.Write([]byte{0x1a}) // Ctrl-Z
	e2ePoll(t, signalsPatience, "the child to stop", func() bool {
		s, _ := procstat.Read(child)
		return s.State == 'T'
	})
	// leaserun tells whether its group was orphaned when it saw the stop:
	// then it would leave the child stopped, as the kernel would.
	e2ePoll(t, signalsPatience, "leaserun to see the child stop", func() bool {
		return strings.Contains(screen.String(), "child stopped")
	})
	if e2eGone(leaserun) {
		t.Fatalf("leaserun exited on Ctrl-Z")
	}

	shell.Process.Kill()
	<-shellDone
	e2ePoll(t, signalsPatience, "the stopped child to be hung up", func() bool { return e2eGone(child) })
	e2ePoll(t, signalsPatience, "leaserun to exit", func() bool { return e2eGone(leaserun) })
	if st := leaseState(t, lease); st != "released" {
		t.Errorf("the lease is %q, want released", st)
	}
	e2ePoll(t, signalsPatience, "leaserun to say it hung the child up", func() bool {
		return strings.Contains(screen.String(), "hanging it up")
	})
}

// A child stopped by SIGSTOP while leaserun's process group is orphaned
// already (under a service manager, here a session of its own) is a
// deliberate pause: leaserun leaves it stopped, as the kernel would, and a
// SIGCONT sent to leaserun resumes it.
func TestDeliberateStopLeftAlone(t *testing.T) {
	dir := t.TempDir()
	lease := filepath.Join(dir, "lease")
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(leaserunBin, "--lease", lease, "--ttl", "30s", "--log-level", "debug", "--", "sleep", "1000")
	cmd.Env = e2eBaseEnv()
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	log := func() string { b, _ := os.ReadFile(stderr.Name()); return string(b) }
	var child int
	e2ePoll(t, signalsPatience, "the child to start", func() bool {
		_, rest, ok := strings.Cut(log(), `msg="child started"`)
		if !ok {
			return false
		}
		_, pid, _ := strings.Cut(rest, "pid=")
		child, err = strconv.Atoi(strings.Fields(pid)[0])
		return err == nil
	})
	syscall.Kill(child, syscall.SIGSTOP)
	// leaserun decides as it sees the stop: it would hang the child up then.
	e2ePoll(t, signalsPatience, "leaserun to see the child stop", func() bool {
		return strings.Contains(log(), `msg="child stopped" lease=`+lease+` orphaned=true`)
	})
	cmd.Process.Signal(syscall.SIGCONT)
	e2ePoll(t, signalsPatience, "the child to continue", func() bool {
		s, _ := procstat.Read(child)
		return s.State != 'T'
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitStatus(t, cmd); code != 143 {
		t.Errorf("exit status %d, want 143 (the child ended by the TERM, not hung up)\n%s", code, log())
	}
	if strings.Contains(log(), "hanging it up") {
		t.Errorf("leaserun hung the paused child up:\n%s", log())
	}
}
