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

// TestFreezeStoppedStaleChildNotResumed: leaserun and its child are both
// stopped (SIGSTOP: a debugger, an operator's kill -STOP, a job-control
// stop) for longer than the TTL, and then only leaserun is continued. Its
// lease has lapsed, so it must kill the still-stopped child at once; it must
// not wake it first by passing on the SIGCONT it received, which would let
// the command run again with a lease that has already lapsed (another
// instance may hold it by then).
//
// Inside leaserun this is a race between the signal forwarder and the
// deadline guard, which no outside observer can steer: the scenario is
// repeated with a short TTL. A correct leaserun passes every round (its
// lease has lapsed by its own monotonic clock the moment it resumes); one
// that forwards first fails only some rounds.
func TestFreezeStoppedStaleChildNotResumed(t *testing.T) {
	const (
		rounds = 12
		ttl    = 500 * time.Millisecond
	)
	for round := range rounds {
		if !e2eStopContRound(t, round, ttl) {
			return
		}
	}
}

// e2eStopContRound runs the scenario once and reports whether it passed.
func e2eStopContRound(t *testing.T, round int, ttl time.Duration) bool {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "child.log")
	holder := e2eStartLeaserun(t, dir, "holder", nil,
		e2eChildEnv(log, e2eEnvHold+"=60s", e2eEnvHeartbeat+"=1ms"),
		"--lease", filepath.Join(dir, "stop.lease"), "--ttl", ttl.String(),
		"--renew", (ttl / 3).String(), "--grace", (ttl / 3).String(), "--log-level", "debug")
	c := e2eWaitChildStart(t, 30*time.Second, log, holder)
	death := e2eWatchDeath(t, c.PID)
	pid := holder.cmd.Process.Pid
	if holder.Exited() {
		t.Fatalf("round %d: leaserun exited before it was stopped (%v); stderr:\n%s", round, holder.err, holder.Stderr())
	}

	for _, p := range []int{pid, -c.PID} {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP %d: %v", p, err)
		}
	}
	for _, p := range []int{pid, c.PID} {
		e2ePoll(t, 10*time.Second, fmt.Sprintf("pid %d to stop", p), func() bool {
			s, err := procstat.Read(p)
			return err != nil || s.State == 'T'
		})
	}
	stopped := monoNow()
	// leaserun's deadline is at most one TTL after its last renewal began,
	// which was before the stop: once the clock is past stopped+TTL, the
	// lease has lapsed in leaserun's own eyes.
	e2ePoll(t, ttl+10*time.Second, "the TTL to pass", func() bool { return monoNow() > stopped+int64(ttl)+int64(10*time.Millisecond) })

	continued := monoNow()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if st := holder.Wait(t, 10*time.Second); st != 76 {
		t.Errorf("round %d: leaserun exited %d, want 76; stderr:\n%s", round, st, holder.Stderr())
	}
	if !death.Wait(10 * time.Second) {
		t.Fatalf("round %d: the stale child (pid %d) still runs 10s after leaserun was continued", round, c.PID)
	}
	c, err := e2eReadChildLog(log)
	if err != nil {
		t.Fatal(err)
	}
	var during, after int
	for _, e := range c.HBs {
		switch {
		case e.Mono > stopped && e.Mono < continued:
			during++
		case e.Mono >= continued:
			after++
		}
	}
	if during > 0 {
		t.Fatalf("round %d: SIGSTOP did not stop the child: %d heartbeats while stopped", round, during)
	}
	if after > 0 {
		var fwd []string
		for line := range strings.Lines(holder.Stderr()) {
			if strings.Contains(line, "forwarding signal") || strings.Contains(line, "lease lost") {
				fwd = append(fwd, strings.TrimSpace(line))
			}
		}
		t.Errorf("round %d: the stale child ran again (%d heartbeats, the first %s after leaserun was continued) "+
			"although its lease had lapsed; leaserun's log:\n  %s",
			round, after, e2eMs(c.HBs[len(c.HBs)-after].Mono-continued), strings.Join(fwd, "\n  "))
		return false
	}
	return true
}
