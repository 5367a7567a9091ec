//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/procstat"
)

// slowLinks is the argv prefix that runs leaserun under strace with every
// link(2) made slow, as on a slow NFS server: the link is made at once, and
// its return delayed by delay. It skips the test where strace can't run.
func slowLinks(t *testing.T, delay time.Duration) []string {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed (apt-get install strace):", err)
	}
	if out, err := exec.Command(strace, "-o", "/dev/null", "true").CombinedOutput(); err != nil {
		t.Skipf("strace cannot trace here: %v: %s", err, out)
	}
	return []string{strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=linkat",
		"-e", fmt.Sprintf("inject=linkat:delay_exit=%d", delay.Microseconds())}
}

// TestTermDuringSlowAcquisition: a TERM that comes while leaserun is taking
// the lease, its write in a slow file server's hands, ends leaserun with
// 143, but not before it has given back the lease that write takes: a
// standby is not blocked for a TTL by a holder that is gone. A hung server
// delays the exit by a TTL at most, and a second TERM ends it at once.
func TestTermDuringSlowAcquisition(t *testing.T) {
	t.Run("given back", func(t *testing.T) {
		dir := t.TempDir()
		lease := filepath.Join(dir, "slow.lease")
		log := filepath.Join(dir, "child.log")
		p := e2eStartLeaserun(t, dir, "leaserun", slowLinks(t, 2*time.Second), e2eChildEnv(log, e2eEnvHold+"=60s"),
			"--lease", lease, "--ttl", "60s", "--log-level", "info")
		pid := termDuringFirstLink(t, p, lease)
		if st := p.Wait(t, 60*time.Second); st != 143 || !strings.Contains(p.Stderr(), "msg=released") {
			t.Errorf("leaserun exited %d, want 143 after it released the lease; stderr:\n%s", st, p.Stderr())
		}
		if _, err := os.Stat(log); err == nil {
			t.Fatalf("the child ran: the TERM (to %d) came after the acquisition; stderr:\n%s", pid, p.Stderr())
		}
		if code, stdout, _ := runLeaserun(t, nil, "status", "--lease", lease, "--format", "{{.State}}"); code != 1 || stdout != "released\n" {
			t.Errorf("after the TERM the lease is %q (status %d), want released; leaserun's stderr:\n%s", stdout, code, p.Stderr())
		}
		if code, _, stderr := runLeaserun(t, nil, "--lease", lease, "--", "true"); code != 0 {
			t.Errorf("the next run: status %d, want 0; stderr %q", code, stderr)
		}
	})

	// With the server hung, leaserun's thread in link(2) stays until the
	// server answers (here: strace's delay, an hour), and leaserun, exited,
	// is a zombie until then; its status is in its last log line.
	hung := func(t *testing.T, ttl time.Duration, logLevel string) (p *e2eProc, pid int) {
		dir := t.TempDir()
		lease := filepath.Join(dir, "hung.lease")
		p = e2eStartLeaserun(t, dir, "leaserun", slowLinks(t, time.Hour), e2eChildEnv(filepath.Join(dir, "child.log")),
			"--lease", lease, "--ttl", ttl.String(), "--log-level", logLevel)
		return p, termDuringFirstLink(t, p, lease)
	}
	exited := func(t *testing.T, p *e2eProc, pid int, within time.Duration, want string) {
		t.Helper()
		e2ePoll(t, within, "leaserun's exit", func() bool {
			s, err := procstat.Read(pid)
			return err != nil || s.State == 'Z'
		})
		if stderr := p.Stderr(); !strings.Contains(stderr, want) || !strings.Contains(stderr, "status=143") {
			t.Errorf("leaserun's log does not say %q and status=143:\n%s", want, stderr)
		}
	}

	t.Run("a hung server delays the exit by a TTL at most", func(t *testing.T) {
		const ttl = 2 * time.Second
		p, pid := hung(t, ttl, "warn")
		termed := time.Now()
		exited(t, p, pid, ttl+30*time.Second, "the file server did not answer in time")
		t.Logf("leaserun exited %v after the TERM (ttl %v)", time.Since(termed).Round(time.Millisecond), ttl)
	})

	t.Run("a second TERM ends it at once", func(t *testing.T) {
		p, pid := hung(t, time.Hour, "debug")
		e2ePoll(t, 30*time.Second, "leaserun to say it gives the lease back", func() bool {
			return strings.Contains(p.Stderr(), "giving back the lease")
		})
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		exited(t, p, pid, 30*time.Second, "SIGTERM again: a lease taken meanwhile is not given back")
	})
}

// termDuringFirstLink waits until leaserun, run by p (strace), has made the
// first version of the lease, whose link(2) has not returned yet, and sends
// it a TERM. It returns leaserun's pid.
func termDuringFirstLink(t *testing.T, p *e2eProc, lease string) int {
	t.Helper()
	var pid int
	e2ePoll(t, 30*time.Second, "the first version of the lease", func() bool {
		if p.Exited() {
			t.Fatalf("leaserun exited before it made the lease; stderr:\n%s", p.Stderr())
		}
		_, err := os.Stat(filepath.Join(lease+".d", "1"))
		return err == nil
	})
	// strace's children: leaserun, and perhaps a probe of its own.
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.cmd.Process.Pid, p.cmd.Process.Pid))
	for _, f := range strings.Fields(string(data)) {
		comm, _ := os.ReadFile("/proc/" + f + "/comm")
		if strings.TrimSpace(string(comm)) == "leaserun" {
			pid, _ = strconv.Atoi(f)
		}
	}
	if pid == 0 {
		t.Fatalf("strace (pid %d) has no leaserun child: %q", p.cmd.Process.Pid, data)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return pid
}
