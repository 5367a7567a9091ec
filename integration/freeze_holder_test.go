//go:build linux

package integration

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/procstat"
)

// e2eFreezer freezes a leaserun process and its child together: a cgroup
// freezer (v1, else v2), or, only where neither exists, SIGSTOP to the
// leaserun process and to the child's process group.
type e2eFreezer struct {
	kind string // "cgroup v1 freezer", "cgroup v2 freezer" or "SIGSTOP"
	dir  string // the cgroup, for the cgroup freezers

	frozen bool
	pids   []int // SIGSTOP: leaserun's pid and the child's process group
}

// e2eNewFreezer sets up the best freezer there is. LEASERUN_E2E_FREEZER=v1,
// v2 or sigstop forces one (to test the fallbacks where the freezer exists).
func e2eNewFreezer(t *testing.T) *e2eFreezer {
	force := os.Getenv("LEASERUN_E2E_FREEZER")
	var why []string
	if force == "" || force == "v1" {
		fz, err := e2eCgroupFreezer(t, "/sys/fs/cgroup/freezer", "cgroup v1 freezer", "freezer.state")
		if err == nil {
			return fz
		}
		why = append(why, err.Error())
	}
	if force == "" || force == "v2" {
		root, err := e2eCgroup2Mount()
		if err == nil {
			var fz *e2eFreezer
			if fz, err = e2eCgroupFreezer(t, root, "cgroup v2 freezer", "cgroup.freeze"); err == nil {
				return fz
			}
		}
		why = append(why, err.Error())
	}
	if force != "" && force != "sigstop" {
		t.Fatalf("LEASERUN_E2E_FREEZER=%s unavailable: %s", force, strings.Join(why, "; "))
	}
	t.Logf("no cgroup freezer (%s): falling back to SIGSTOP of leaserun and of the child's process group",
		cmp.Or(strings.Join(why, "; "), "forced"))
	return &e2eFreezer{kind: "SIGSTOP"}
}

// e2eCgroup2Mount finds where the cgroup v2 hierarchy is mounted.
func e2eCgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID parent major:minor root mountpoint opts... - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fs, pf := strings.Fields(post), strings.Fields(pre)
		if ok && len(fs) > 0 && fs[0] == "cgroup2" && len(pf) > 4 {
			return pf[4], nil
		}
	}
	return "", errors.New("cgroup v2: not mounted")
}

// e2eCgroupFreezer makes a cgroup under root whose control file freezes it.
func e2eCgroupFreezer(t *testing.T, root, kind, control string) (*e2eFreezer, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	dir := filepath.Join(root, fmt.Sprintf("leaserun-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	fz := &e2eFreezer{kind: kind, dir: dir}
	t.Cleanup(func() { fz.remove(t) })
	if _, err := os.Stat(filepath.Join(dir, control)); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	t.Logf("freezing with the %s (%s)", kind, dir)
	return fz, nil
}

// prefix is what to run leaserun under so that it, and the child it starts
// later, are in the cgroup from the start.
func (fz *e2eFreezer) prefix() []string {
	if fz.dir == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(fz.dir, "cgroup.procs")}
}

// checkMember fails the test unless pid is in the cgroup.
func (fz *e2eFreezer) checkMember(t *testing.T, pid int) {
	t.Helper()
	if fz.dir == "" {
		return
	}
	data, err := os.ReadFile(filepath.Join(fz.dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(data)) {
		if f == fmt.Sprint(pid) {
			return
		}
	}
	t.Fatalf("pid %d is not in %s (members: %q)", pid, fz.dir, data)
}

// freeze freezes leaserun (pid) and its child (childPID) and returns once
// they are frozen, failing the test if that doesn't happen in 10s.
func (fz *e2eFreezer) freeze(t *testing.T, pid, childPID int) {
	t.Helper()
	fz.frozen = true
	switch fz.kind {
	case "cgroup v1 freezer":
		fz.write(t, "freezer.state", "FROZEN")
		e2ePoll(t, 10*time.Second, "the cgroup to freeze", func() bool { return fz.read(t, "freezer.state") == "FROZEN" })
	case "cgroup v2 freezer":
		fz.write(t, "cgroup.freeze", "1")
		e2ePoll(t, 10*time.Second, "the cgroup to freeze", func() bool {
			return strings.Contains("\n"+fz.read(t, "cgroup.events")+"\n", "\nfrozen 1\n")
		})
	default:
		fz.pids = []int{pid, -childPID}
		for _, p := range fz.pids {
			if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
				t.Fatalf("SIGSTOP %d: %v", p, err)
			}
		}
		for _, p := range []int{pid, childPID} {
			e2ePoll(t, 10*time.Second, fmt.Sprintf("pid %d to stop", p), func() bool {
				s, err := procstat.Read(p)
				return err != nil || s.State == 'T'
			})
		}
	}
}

// thaw undoes freeze.
func (fz *e2eFreezer) thaw(t testing.TB) {
	if !fz.frozen {
		return
	}
	fz.frozen = false
	switch fz.kind {
	case "cgroup v1 freezer":
		fz.write(t, "freezer.state", "THAWED")
	case "cgroup v2 freezer":
		fz.write(t, "cgroup.freeze", "0")
	default:
		for _, p := range fz.pids {
			syscall.Kill(p, syscall.SIGCONT)
		}
	}
}

// remove thaws the cgroup, kills what is left in it and removes it.
func (fz *e2eFreezer) remove(t testing.TB) {
	fz.thaw(t)
	procs := filepath.Join(fz.dir, "cgroup.procs")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(procs)
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			break
		}
		for _, f := range strings.Fields(string(data)) {
			var pid int
			fmt.Sscan(f, &pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left in %s: %s", fz.dir, data)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.Remove(fz.dir); err != nil {
		t.Errorf("removing the cgroup: %v", err)
	}
}

func (fz *e2eFreezer) write(t testing.TB, file, value string) {
	if err := os.WriteFile(filepath.Join(fz.dir, file), []byte(value), 0o644); err != nil {
		t.Fatalf("%s: %v", fz.kind, err)
	}
}

func (fz *e2eFreezer) read(t testing.TB, file string) string {
	data, err := os.ReadFile(filepath.Join(fz.dir, file))
	if err != nil {
		t.Fatalf("%s: %v", fz.kind, err)
	}
	return strings.TrimSpace(string(data))
}

// TestFreezeHolderPastTTL: the active leaserun and its child are frozen
// together (a VM pause, a cgroup freeze) for longer than the TTL. The
// standby takes over. On thaw the stale leaserun finds its lease expired,
// kills its child at once and exits 76; the new holder runs on undisturbed.
// The stale child does nothing while frozen, nor after its leaserun exits;
// what it does in the instant between thaw and kill carries its old epoch.
func TestFreezeHolderPastTTL(t *testing.T) {
	dir := t.TempDir()
	lease := filepath.Join(dir, "freeze.lease")
	const ttl = 2 * time.Second
	flags := []string{"--lease", lease, "--ttl", ttl.String()}
	fz := e2eNewFreezer(t)

	oldLog := filepath.Join(dir, "old.log")
	holder := e2eStartLeaserun(t, dir, "holder", fz.prefix(),
		e2eChildEnv(oldLog, e2eEnvHold+"=60s", e2eEnvHeartbeat+"=2ms"), flags...)
	old := e2eWaitChildStart(t, 30*time.Second, oldLog, holder)
	fz.checkMember(t, holder.cmd.Process.Pid)
	fz.checkMember(t, old.PID)
	death := e2eWatchDeath(t, old.PID)

	newLog := filepath.Join(dir, "new.log")
	releaseNew := filepath.Join(dir, "release-new")
	standby := e2eStartLeaserun(t, dir, "standby", nil,
		e2eChildEnv(newLog, e2eEnvHold+"=60s", e2eEnvHoldUntil+"="+releaseNew, e2eEnvHeartbeat+"=2ms"),
		append(flags, "--wait", "--log-level", "info")...)
	e2ePoll(t, 30*time.Second, "the standby to wait for the lease", func() bool {
		if standby.Exited() {
			t.Fatalf("the standby exited early (%v); stderr:\n%s", standby.err, standby.Stderr())
		}
		return strings.Contains(standby.Stderr(), "waiting for the lease")
	})

	fz.freeze(t, holder.cmd.Process.Pid, old.PID)
	t.Cleanup(func() { fz.thaw(t) }) // before the processes are killed
	frozen := monoNow()

	nw := e2eWaitChildStart(t, ttl+5*time.Second, newLog, standby)
	t.Logf("the standby's child started %s after the freeze (ttl %v)", e2eMs(nw.Start.Mono-frozen), ttl)

	thawed := monoNow()
	fz.thaw(t)
	if st := holder.Wait(t, 10*time.Second); st != 76 {
		t.Errorf("the stale leaserun exited %d, want 76; stderr:\n%s", st, holder.Stderr())
	}
	if !death.Wait(10 * time.Second) {
		t.Fatalf("the stale child (pid %d) still runs 10s after the thaw", old.PID)
	}
	t.Logf("the stale child's death seen %s after the thaw; leaserun's exit %s after it",
		e2eMs(death.mono-thawed), e2eMs(holder.exitedMono-thawed))

	old, err := e2eReadChildLog(oldLog)
	if err != nil {
		t.Fatal(err)
	}
	if old.End != nil {
		t.Errorf("the stale child exited by itself instead of being killed")
	}
	// What can be asserted about the stale child's activity: nothing while
	// frozen (else the freezer failed us); and after the standby's child
	// started, only in the moment between the thaw and the kill. That
	// moment cannot be closed by leaserun: a thawed group's child may run
	// before leaserun does. Such late work is what epochs fence: it
	// carries the stale epoch, lower than the new holder's.
	var during, afterNew []e2eEvent
	for _, e := range old.HBs {
		if e.Mono > frozen && e.Mono < thawed {
			during = append(during, e)
		}
		if e.Mono >= nw.Start.Mono {
			afterNew = append(afterNew, e)
		}
	}
	if len(during) > 0 {
		t.Errorf("the %s did not freeze the child: %d heartbeats while frozen", fz.kind, len(during))
	}
	for _, e := range afterNew {
		if e.Mono < thawed {
			t.Errorf("stale heartbeat %s after the new child started, before the thaw", e2eMs(e.Mono-nw.Start.Mono))
		}
	}
	t.Logf("%d stale heartbeats between the thaw and the kill", len(afterNew))
	if last := old.Last(); last.Mono >= holder.exitedMono {
		t.Errorf("the stale child was active after its leaserun exited")
	}
	if nw.Epoch <= old.Epoch {
		t.Errorf("new epoch %d, want more than the stale %d", nw.Epoch, old.Epoch)
	}

	// The new holder was not disturbed: its child is still running and
	// finishes normally.
	if err := os.WriteFile(releaseNew, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := standby.Wait(t, 30*time.Second); st != 0 {
		t.Errorf("the standby exited %d, want its child's 0; stderr:\n%s", st, standby.Stderr())
	}
	if nw, err = e2eReadChildLog(newLog); err != nil || nw.End == nil {
		t.Errorf("the new child did not finish normally: %v", err)
	}
}
