//go:build linux

package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/procstat"
)

// TestKillHolderStandbyTakesOver: the active leaserun is SIGKILLed (OOM, kill
// -9). Its child, which would otherwise run for a minute, dies with it
// (parent-death signal). The standby, started before the kill, starts its
// own child once the lease has lapsed: within TTL plus a margin of the kill,
// and never while the old child was still alive.
func TestKillHolderStandbyTakesOver(t *testing.T) {
	dir := t.TempDir()
	lease := filepath.Join(dir, "kill.lease")
	const ttl = 2 * time.Second
	flags := []string{"--lease", lease, "--ttl", ttl.String()}

	oldLog := filepath.Join(dir, "old.log")
	holder := e2eStartLeaserun(t, dir, "holder", nil,
		e2eChildEnv(oldLog, e2eEnvHold+"=60s", e2eEnvHeartbeat+"=5ms"), flags...)
	old := e2eWaitChildStart(t, 30*time.Second, oldLog, holder)
	oldStat, err := procstat.Read(old.PID)
	if err != nil {
		t.Fatalf("the old child (pid %d) is not running: %v", old.PID, err)
	}
	death := e2eWatchDeath(t, old.PID)
	if !e2eAlive(fmt.Sprintf("%d:%d", old.PID, oldStat.StartTime)) {
		t.Fatalf("the old child (pid %d) died before the kill; holder stderr:\n%s", old.PID, holder.Stderr())
	}

	newLog := filepath.Join(dir, "new.log")
	standby := e2eStartLeaserun(t, dir, "standby", nil,
		e2eChildEnv(newLog, e2eEnvHold+"=50ms", e2eEnvExit+"=7",
			e2eEnvOld+"="+fmt.Sprintf("%d:%d", old.PID, oldStat.StartTime)),
		append(flags, "--wait", "--log-level", "info")...)
	e2ePoll(t, 30*time.Second, "the standby to wait for the lease", func() bool {
		if standby.Exited() {
			t.Fatalf("the standby exited early (%v); stderr:\n%s", standby.err, standby.Stderr())
		}
		return strings.Contains(standby.Stderr(), "waiting for the lease")
	})

	killed := monoNow()
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := holder.Wait(t, 10*time.Second); st != 128+int(syscall.SIGKILL) {
		t.Errorf("the holder exited %d, want 137 (SIGKILL)", st)
	}
	// Generous: the bound only says the child died at all (it would
	// otherwise have run for 60s).
	if !death.Wait(10 * time.Second) {
		t.Fatalf("the old child (pid %d) still runs 10s after its leaserun was SIGKILLed", old.PID)
	}
	t.Logf("old child's death seen (%s) %s after the kill", death.how, e2eMs(death.mono-killed))

	nw := e2eWaitChildStart(t, ttl+5*time.Second, newLog, standby)
	t.Logf("new child started %s after the kill (ttl %v)", e2eMs(nw.Start.Mono-killed), ttl)
	if d := time.Duration(nw.Start.Mono - killed); d > ttl+5*time.Second {
		t.Errorf("the standby's child started %v after the kill, want within ttl %v + 5s", d, ttl)
	}
	if nw.Start.Extra == "old-alive" {
		t.Errorf("the standby's child started while the old child (pid %d) was still running", old.PID)
	}
	if nw.Start.Mono <= death.mono {
		t.Errorf("the standby's child started at %d, before the old child's death was seen at %d", nw.Start.Mono, death.mono)
	}
	old, err = e2eReadChildLog(oldLog)
	if err != nil {
		t.Fatal(err)
	}
	if last := old.Last(); last.Mono >= nw.Start.Mono {
		t.Errorf("the old child was active (%s) %s after the new child started", last.Kind, e2eMs(last.Mono-nw.Start.Mono))
	}
	if old.End != nil {
		t.Errorf("the old child exited by itself instead of being killed")
	}
	if nw.Epoch <= old.Epoch {
		t.Errorf("new epoch %d, want more than the old %d", nw.Epoch, old.Epoch)
	}
	if st := standby.Wait(t, 30*time.Second); st != 7 {
		t.Errorf("the standby exited %d, want its child's 7; stderr:\n%s", st, standby.Stderr())
	}
}
