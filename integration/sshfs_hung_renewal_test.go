//go:build linux

package integration

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/sshfsrig"
	"github.com/leaserun/leaserun/lease"
)

// TestSSHFSHungRenewal: the lease lives on a network filesystem (sshfs) and
// the file server hangs (its sftp-server is stopped) while leaserun holds.
// Renewals hang in the filesystem, so the deadline guard must stop the child
// on its own: the stop signal (the child ignores it), then SIGKILL, before
// the lease can lapse, as other hosts judge it from the record on the
// server. Once the server resumes, leaserun exits 76.
func TestSSHFSHungRenewal(t *testing.T) {
	rig := sshfsrig.Start(t, 1)
	dir := t.TempDir() // local: the child's log must not hang with the mount
	const ttl = 3 * time.Second
	onServer := filepath.Join(rig.Dir, "hung.lease") // the same lease, read on the server
	log := filepath.Join(dir, "child.log")
	holder := e2eStartLeaserun(t, dir, "holder", nil,
		e2eChildEnv(log, e2eEnvHold+"=60s", e2eEnvHeartbeat+"=5ms", e2eEnvIgnoreTerm+"=1"),
		"--lease", filepath.Join(rig.Mounts[0].Path, "hung.lease"), "--ttl", ttl.String())
	c := e2eWaitChildStart(t, 30*time.Second, log, holder)
	death := e2eWatchDeath(t, c.PID)

	// Let one renewal through, so the hang hits a lease that has been
	// renewed, as in real life.
	e2ePoll(t, 2*ttl, "a renewal", func() bool {
		st, err := lease.Read(onServer)
		return err == nil && st.Record != nil && st.Record.RenewedAt.After(st.Record.AcquiredAt)
	})

	server := rig.Mounts[0].ServerPID
	if err := syscall.Kill(server, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hungWall := wallNow()
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(server, syscall.SIGCONT)
		}
	}
	defer resume()

	if !death.Wait(ttl + 10*time.Second) {
		t.Fatalf("the child (pid %d) still runs %v after the file server hung", c.PID, ttl+10*time.Second)
	}
	// Read what the server holds while it is still stopped: the newest
	// version that reached it. leaserun's last successful renewal is at
	// most that one, so this bound is the loosest that is still sound.
	st, err := lease.Read(onServer)
	if err != nil || st.Record == nil {
		t.Fatalf("reading the record on the server: %v, %v", st, err)
	}
	rec := st.Record
	if rec.InstanceID != c.Instance {
		t.Fatalf("the record on the server is %s's, not the child's holder %s", rec.InstanceID, c.Instance)
	}
	c, err = e2eReadChildLog(log)
	if err != nil {
		t.Fatal(err)
	}
	lapse := rec.RenewedAt.Add(rec.TTL)
	last := c.Last()
	t.Logf("the server hung %s after the last renewal reached it; the stop signal came %s and the child's last heartbeat %s before the lease could lapse",
		time.Duration(hungWall-rec.RenewedAt.UnixNano()),
		lapseBefore(c.Terms, lapse), time.Duration(lapse.UnixNano()-last.Wall))
	if last.Wall >= lapse.UnixNano() {
		t.Errorf("the child was active at %s, %v after the lease lapsed at %s (renewed at %s, ttl %v)",
			time.Unix(0, last.Wall).Format(time.RFC3339Nano), time.Duration(last.Wall-lapse.UnixNano()),
			lapse.Format(time.RFC3339Nano), rec.RenewedAt.Format(time.RFC3339Nano), rec.TTL)
	}
	if len(c.Terms) == 0 {
		t.Errorf("the child never got the stop signal before SIGKILL")
	}
	if c.End != nil {
		t.Errorf("the child exited by itself; it was to be killed")
	}
	if holder.Exited() {
		t.Logf("leaserun exited while the server was still stopped")
	}

	resume()
	if st := holder.Wait(t, 30*time.Second); st != 76 {
		t.Errorf("leaserun exited %d, want 76; stderr:\n%s", st, holder.Stderr())
	}
}

// lapseBefore says how long before lapse the first stop signal came.
func lapseBefore(terms []e2eEvent, lapse time.Time) string {
	if len(terms) == 0 {
		return "never"
	}
	return time.Duration(lapse.UnixNano() - terms[0].Wall).String()
}

// TestSSHFSHungRenewalStuckStderr is TestSSHFSHungRenewal with leaserun's
// stderr a pipe that nobody reads any more (a stalled log collector:
// journald, a container log driver, "| logger" stuck), as happens in the
// very outages that hang file servers. The contract is absolute, "never lets
// the command outlive the lease", and the stop is "driven by a timer", so a
// log line that cannot be written must not delay it: the child is still
// stopped and killed before the lease can lapse.
func TestSSHFSHungRenewalStuckStderr(t *testing.T) {
	rig := sshfsrig.Start(t, 1)
	dir := t.TempDir()
	const ttl = 3 * time.Second
	onServer := filepath.Join(rig.Dir, "hung.lease")
	log := filepath.Join(dir, "child.log")

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	holder := e2eStartLeaserunTo(t, dir, w, nil,
		e2eChildEnv(log, e2eEnvHold+"=60s", e2eEnvHeartbeat+"=5ms", e2eEnvIgnoreTerm+"=1"),
		"--lease", filepath.Join(rig.Mounts[0].Path, "hung.lease"), "--ttl", ttl.String())
	c := e2eWaitChildStart(t, 30*time.Second, log, holder)
	death := e2eWatchDeath(t, c.PID)
	e2ePoll(t, 2*ttl, "a renewal", func() bool {
		st, err := lease.Read(onServer)
		return err == nil && st.Record != nil && st.Record.RenewedAt.After(st.Record.AcquiredAt)
	})

	// Fill the pipe through an open file description of our own, so that
	// O_NONBLOCK is ours alone: leaserun's stderr stays blocking.
	fill, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", w.Fd()), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for i := range chunk {
		chunk[i] = '.'
	}
	for {
		if _, err := syscall.Write(int(fill.Fd()), chunk); err != nil {
			if err == syscall.EAGAIN {
				break
			}
			t.Fatalf("filling the pipe: %v", err)
		}
	}
	fill.Close()
	w.Close()
	drained := make(chan string, 1)
	drain := sync.OnceFunc(func() {
		go func() {
			data, _ := io.ReadAll(r)
			drained <- regexp.MustCompile(`\.{64,}`).ReplaceAllString(string(data), "[our filler]\n")
		}()
	})
	defer drain()

	server := rig.Mounts[0].ServerPID
	if err := syscall.Kill(server, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resume := sync.OnceFunc(func() { syscall.Kill(server, syscall.SIGCONT) })
	defer resume()

	died := death.Wait(ttl + 5*time.Second)
	st, err := lease.Read(onServer)
	if err != nil || st.Record == nil {
		t.Fatalf("reading the record on the server: %v, %v", st, err)
	}
	lapse := st.Record.RenewedAt.Add(st.Record.TTL)
	c, err = e2eReadChildLog(log)
	if err != nil {
		t.Fatal(err)
	}
	var late []e2eEvent
	for _, e := range c.HBs {
		if e.Wall >= lapse.UnixNano() {
			late = append(late, e)
		}
	}
	if !died || len(late) > 0 {
		t.Errorf("the child (pid %d) was still running %v after the lease lapsed at %s (dead: %v; %d heartbeats after the lapse; stop signals received: %d); leaserun's threads wait in: %s",
			c.PID, time.Duration(c.Last().Wall-lapse.UnixNano()), lapse.Format(time.RFC3339Nano), died, len(late), len(c.Terms),
			e2eWchans(holder.cmd.Process.Pid))
	}

	drain()
	resume()
	code := holder.Wait(t, 30*time.Second)
	out := <-drained
	if code != 76 {
		t.Errorf("leaserun exited %d, want 76", code)
	}
	if t.Failed() {
		t.Logf("leaserun's log, once drained:\n%s", out)
	}
}

// e2eWchans lists where pid's threads sleep in the kernel (wchan), counted.
func e2eWchans(pid int) string {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", pid))
	n := map[string]int{}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err == nil {
			n[cmp.Or(string(b), "?")]++
		}
	}
	var parts []string
	for k, v := range n {
		parts = append(parts, fmt.Sprintf("%s×%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
