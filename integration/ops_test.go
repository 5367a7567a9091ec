//go:build linux

package integration

// Operating it: --max-runtime, --once-per, --health-addr and
// "leaserun release --epoch", with real processes and real HTTP.

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/leaserun/leaserun/internal/procstat"
	"github.com/leaserun/leaserun/internal/sshfsrig"
	"github.com/leaserun/leaserun/lease"
)

// opsStart starts leaserun with args (everything after the executable's
// name), its stdout and stderr to NAME.stderr in dir. A cleanup kills it
// if the test leaves it running.
func opsStart(t testing.TB, dir, name string, env []string, args ...string) *e2eProc {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name+".stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(leaserunBin, args...)
	cmd.Env = append(e2eBaseEnv(), env...)
	cmd.Dir = dir
	return e2eStart(t, cmd, f)
}

// opsStatus is "leaserun status --lease path", with env added to the
// environment: its status and record.
func opsStatus(t testing.TB, env []string, path string) (int, map[string]any) {
	t.Helper()
	cmd := exec.Command(leaserunBin, "status", "--lease", path)
	cmd.Env = append(e2eBaseEnv(), env...)
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(out, &rec); err != nil {
		t.Fatalf("status output %q: %v", out, err)
	}
	return code, rec
}

// opsDead reports whether pid has exited (gone, or a zombie).
func opsDead(pid int) bool {
	s, err := procstat.Read(pid)
	return err != nil || !s.Alive()
}

// A child that ignores the stop signal is SIGKILLed --grace after
// --max-runtime; leaserun releases the lease and exits 124, with a line
// at warn.
func TestMaxRuntime(t *testing.T) {
	opsMaxRuntime(t, filepath.Join(t.TempDir(), "mr.lease"), nil)
}

// opsMaxRuntime is TestMaxRuntime on the lease at path, with env added to
// leaserun's environment.
func opsMaxRuntime(t *testing.T, path string, env []string) {
	dir := t.TempDir()
	log := filepath.Join(dir, "child.log")
	start := time.Now()
	p := e2eStartLeaserun(t, dir, "mr", nil,
		append(slices.Clone(env), e2eChildEnv(log, e2eEnvHold+"=60s", e2eEnvIgnoreTerm+"=1", e2eEnvHeartbeat+"=50ms")...),
		"--lease", path, "--ttl", "6s", "--grace", "700ms", "--max-runtime", "3s")
	if code := p.Wait(t, 20*time.Second); code != 124 {
		t.Fatalf("leaserun exited %d, want 124; stderr:\n%s", code, p.Stderr())
	}
	if took := time.Since(start); took < 3700*time.Millisecond {
		t.Errorf("leaserun exited after %v, before --max-runtime + --grace", took)
	}
	c, err := e2eReadChildLog(log)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Terms) == 0 || c.End != nil {
		t.Errorf("the child got %d TERMs and ended by itself: %v; want TERM, then SIGKILL", len(c.Terms), c.End != nil)
	}
	if !opsDead(c.PID) {
		t.Errorf("the child (pid %d) still runs", c.PID)
	}
	stderr := p.Stderr()
	if !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "maximum runtime reached") || !strings.Contains(stderr, path) {
		t.Errorf("no warning naming the lease and the maximum runtime:\n%s", stderr)
	}
	if code, rec := opsStatus(t, env, path); code != 1 || rec["state"] != "released" {
		t.Errorf("after --max-runtime the lease is %v (status %d), want released", rec["state"], code)
	}
}

// opsOncePer races workers leaserun loops (env added to their environment), each running
// "leaserun --once-per SLOT" as fast as it can (half of them standing by
// for up to a second), on one lease through paths (several: one lease seen
// through several mounts), for slots whole slots. Each run's command logs
// its slot (LEASERUN_SLOT) and epoch, holds 100ms and exits 3. Every
// whole slot has exactly one run, no slot has two, and every leaserun
// exits 3 (it ran), 0 (the slot had its run: silently) or 75 (the last
// slot's run still held the lease).
func opsOncePer(t *testing.T, env []string, paths []string, workers int, slot time.Duration, slots int) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	script := `printf '%s %s\n' "$LEASERUN_SLOT" "$LEASERUN_EPOCH" >> ` + runs + `; sleep 0.1; exit 3`
	// Start just after a slot boundary, so that the slots counted are whole.
	first := lease.SlotOf(time.Now(), slot).Add(slot)
	time.Sleep(time.Until(first) + 10*time.Millisecond)
	end := first.Add(time.Duration(slots) * slot)

	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for w := range workers {
		path := paths[w%len(paths)]
		rng := rand.New(rand.NewPCG(uint64(w), 7))
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				args := []string{"--lease", path, "--ttl", "2s", "--once-per", slot.String()}
				if w%2 == 0 {
					args = append(args, "--wait-timeout", "1s")
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				p := opsStart(t, dir, name, env, append(args, "--", "sh", "-c", script)...)
				code := p.Wait(t, 30*time.Second)
				if code == 0 || code == 75 {
					if out := p.Stderr(); out != "" && code == 0 {
						t.Errorf("%s: a skipped run printed %q", name, out)
					}
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
				if code != 0 && code != 3 && code != 75 {
					t.Errorf("%s: leaserun exited %d; stderr:\n%s", name, code, p.Stderr())
				}
				time.Sleep(time.Duration(10+rng.IntN(20)) * time.Millisecond)
			}
		})
	}
	wg.Wait()

	data, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	perSlot := map[time.Time][]string{}
	var epochs []uint64
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("bad line %q", line)
		}
		at, err := time.Parse(time.RFC3339Nano, f[0])
		if err != nil {
			t.Fatalf("LEASERUN_SLOT %q: %v", f[0], err)
		}
		perSlot[at] = append(perSlot[at], f[1])
		e, _ := strconv.ParseUint(f[1], 10, 64)
		epochs = append(epochs, e)
	}
	t.Logf("%d leaserun runs: %v (exit status: count); runs per slot: %v", sum(codes), codes, perSlot)
	for s := first; s.Before(end); s = s.Add(slot) {
		if n := len(perSlot[s]); n != 1 {
			t.Errorf("slot %s: %d runs (epochs %v), want exactly 1", s.Format(time.RFC3339Nano), n, perSlot[s])
		}
	}
	for s, e := range perSlot {
		if len(e) > 1 {
			t.Errorf("slot %s ran %d times (epochs %v)", s.Format(time.RFC3339Nano), len(e), e)
		}
		if s.Before(first) || !s.Before(end.Add(slot)) {
			t.Errorf("a run in slot %s, outside the test's", s.Format(time.RFC3339Nano))
		}
	}
	if codes[3] != len(epochs) {
		t.Errorf("%d leaserun exited 3 but %d commands ran", codes[3], len(epochs))
	}
	if !slices.IsSorted(epochs) {
		t.Errorf("epochs of the runs, in the order they ran, not increasing: %v", epochs)
	}
	// status shows the last slot that ran and its exit status.
	_, rec := opsStatus(t, env, paths[0])
	s, _ := rec["slot"].(map[string]any)
	if s == nil || s["exit_status"] != float64(3) || s["length"] != float64(slot) {
		t.Errorf("status shows slot %v, want the last run's, with exit status 3", rec["slot"])
	}
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestOncePerRace: eight leaserun loops on one host run the command
// exactly once in each of three 2-second slots.
func TestOncePerRace(t *testing.T) {
	opsOncePer(t, nil, []string{filepath.Join(t.TempDir(), "once.lease")}, 8, 2*time.Second, 3)
}

// TestOncePerSSHFSTwoHosts: the same across two sshfs mounts of one
// directory ("hosts" whose kernels share no locks), the second caching
// failed lookups.
func TestOncePerSSHFSTwoHosts(t *testing.T) {
	rig := sshfsrig.StartHosts(t, "", sshfsrig.NegativeCache)
	opsOncePer(t, nil, []string{
		filepath.Join(rig.Mounts[0].Path, "once.lease"),
		filepath.Join(rig.Mounts[1].Path, "once.lease"),
	}, 8, 2*time.Second, 3)
}

// healthAddr waits for leaserun to log where it serves health checks.
func healthAddr(t *testing.T, p *e2eProc) string {
	t.Helper()
	re := regexp.MustCompile(`msg="serving health checks".* addr=(\S+)`)
	var addr string
	e2ePoll(t, 20*time.Second, "leaserun to serve health checks", func() bool {
		if p.Exited() {
			t.Fatalf("leaserun exited; stderr:\n%s", p.Stderr())
		}
		if m := re.FindStringSubmatch(p.Stderr()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return "http://" + addr
}

// logTime is the time of p's first log line whose message is msg.
func logTime(t *testing.T, p *e2eProc, msg string) time.Time {
	t.Helper()
	m := regexp.MustCompile(`(?m)^time=(\S+) level=\w+ msg=` + regexp.QuoteMeta(msg) + ` `).FindStringSubmatch(p.Stderr())
	if m == nil {
		t.Fatalf("no log line %q; stderr:\n%s", msg, p.Stderr())
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// httpCode is the status of GET url, or 0 if it could not be had.
func httpCode(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// scrape parses url's metrics with Prometheus's text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	for _, name := range []string{"leaserun_lease_held", "leaserun_lease_epoch", "leaserun_acquisitions_total",
		"leaserun_renewals_total", "leaserun_renewal_failures_total", "leaserun_renewal_duration_seconds",
		"leaserun_lease_deadline_seconds", "leaserun_waiting"} {
		if mfs[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	return mfs
}

// value is the value of the metric name of a family without labels.
func value(mfs map[string]*dto.MetricFamily, name string) float64 {
	mf := mfs[name]
	if mf == nil || len(mf.Metric) != 1 {
		return -1
	}
	m := mf.Metric[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// Two leaserun --wait with --health-addr: /healthz answers on both, /leader
// only on the holder; the standby acquires within one renewal of the
// hand-off (by the two leaserun's logs), and its /leader then answers 200;
// /metrics parses and follows the lease.
func TestHealthHandOff(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.lease")
	const ttl, renew = 3 * time.Second, time.Second
	common := []string{"--lease", path, "--wait", "--ttl", ttl.String(), "--renew", renew.String(),
		"--health-addr", "127.0.0.1:0", "--log-level", "info"}
	logA, logB := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	stopA := filepath.Join(dir, "a.stop")
	a := e2eStartLeaserun(t, dir, "a", nil, e2eChildEnv(logA, e2eEnvHold+"=60s", e2eEnvHoldUntil+"="+stopA), common...)
	ca := e2eWaitChildStart(t, 20*time.Second, logA, a)
	b := e2eStartLeaserun(t, dir, "b", nil, e2eChildEnv(logB, e2eEnvHold+"=60s"), common...)
	urlA, urlB := healthAddr(t, a), healthAddr(t, b)

	for _, u := range []string{urlA, urlB} {
		if c := httpCode(u + "/healthz"); c != 200 {
			t.Errorf("%s/healthz: %d, want 200", u, c)
		}
	}
	if c := httpCode(urlA + "/leader"); c != 200 {
		t.Errorf("the holder's /leader: %d, want 200", c)
	}
	e2ePoll(t, 20*time.Second, "the standby to wait", func() bool { return value(scrape(t, urlB), "leaserun_waiting") == 1 })
	if c := httpCode(urlB + "/leader"); c != 503 {
		t.Errorf("the standby's /leader: %d, want 503", c)
	}
	if c := httpCode(urlB + "/nope"); c != 404 {
		t.Errorf("/nope: %d, want 404", c)
	}
	ma := scrape(t, urlA)
	if value(ma, "leaserun_lease_held") != 1 || value(ma, "leaserun_lease_epoch") != float64(ca.Epoch) ||
		value(ma, "leaserun_acquisitions_total") != 1 || value(ma, "leaserun_waiting") != 0 {
		t.Errorf("the holder's metrics: held %v epoch %v (want %d) acquisitions %v waiting %v", value(ma, "leaserun_lease_held"),
			value(ma, "leaserun_lease_epoch"), ca.Epoch, value(ma, "leaserun_acquisitions_total"), value(ma, "leaserun_waiting"))
	}
	if d := value(ma, "leaserun_lease_deadline_seconds"); d <= 0 || d > ttl.Seconds() {
		t.Errorf("the holder's deadline: %vs", d)
	}
	mb := scrape(t, urlB)
	if value(mb, "leaserun_lease_held") != 0 || value(mb, "leaserun_acquisitions_total") != 0 || value(mb, "leaserun_lease_deadline_seconds") != 0 {
		t.Errorf("the standby's metrics: held %v acquisitions %v deadline %v", value(mb, "leaserun_lease_held"),
			value(mb, "leaserun_acquisitions_total"), value(mb, "leaserun_lease_deadline_seconds"))
	}
	// Renewals go on, and are counted and timed.
	r0 := value(ma, "leaserun_renewals_total")
	e2ePoll(t, 20*time.Second, "two more renewals", func() bool { return value(scrape(t, urlA), "leaserun_renewals_total") >= r0+2 })
	if ma := scrape(t, urlA); value(ma, "leaserun_renewal_duration_seconds") < value(ma, "leaserun_renewals_total") {
		t.Errorf("renewal histogram counts %v renewals, fewer than %v", value(ma, "leaserun_renewal_duration_seconds"), value(ma, "leaserun_renewals_total"))
	}

	// Hand-off: the holder's child exits, it releases; the standby
	// acquires within one renewal (by the two processes' logs, which a
	// stall of this test does not lengthen), and its /leader answers 200.
	os.WriteFile(stopA, nil, 0o644)
	if code := a.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("the holder exited %d; stderr:\n%s", code, a.Stderr())
	}
	e2ePoll(t, 20*time.Second, "the standby's /leader to answer 200", func() bool { return httpCode(urlB+"/leader") == 200 })
	took := logTime(t, b, "acquired").Sub(logTime(t, a, "released"))
	t.Logf("the standby acquired %v after the holder released", took)
	if took > renew {
		t.Errorf("the standby acquired %v after the release, more than one renewal (%v)", took, renew)
	}
	cb := e2eWaitChildStart(t, 20*time.Second, logB, b)
	if mb := scrape(t, urlB); value(mb, "leaserun_lease_held") != 1 || value(mb, "leaserun_lease_epoch") != float64(cb.Epoch) ||
		value(mb, "leaserun_waiting") != 0 || value(mb, "leaserun_acquisitions_total") != 1 {
		t.Errorf("the new holder's metrics: held %v epoch %v (want %d) waiting %v", value(mb, "leaserun_lease_held"),
			value(mb, "leaserun_lease_epoch"), cb.Epoch, value(mb, "leaserun_waiting"))
	}
	if httpCode(urlA+"/healthz") != 0 {
		t.Errorf("the old holder still serves after it exited")
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.Wait(t, 20*time.Second)
}

// A health client that hangs up mid-response sends leaserun's child no
// SIGPIPE (leaserun forwards the SIGPIPEs it catches to the child); one
// sent to leaserun with kill still reaches it.
func TestHealthClientHangUpSendsNoSIGPIPE(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.lease")
	pipes, started, stop := filepath.Join(dir, "pipes"), filepath.Join(dir, "started"), filepath.Join(dir, "stop")
	script := `trap 'echo PIPE >> ` + pipes + `' PIPE; touch ` + started + `; while [ ! -e ` + stop + ` ]; do sleep 0.05; done`
	p := opsStart(t, dir, "p", nil, "--lease", path, "--health-addr", "127.0.0.1:0", "--log-level", "info", "--", "sh", "-c", script)
	url := healthAddr(t, p)
	e2ePoll(t, 20*time.Second, "the child to start", func() bool { _, err := os.Stat(started); return err == nil })
	addr := strings.TrimPrefix(url, "http://")
	req := strings.Repeat("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200)
	for range 30 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(req))
		c.Close()
	}
	time.Sleep(500 * time.Millisecond) // for a SIGPIPE to be forwarded, if one were
	if httpCode(url+"/healthz") != 200 {
		t.Fatal("the health server stopped answering")
	}
	if data, _ := os.ReadFile(pipes); len(data) != 0 {
		t.Fatalf("the child got SIGPIPE %d times from clients that hung up", strings.Count(string(data), "PIPE"))
	}
	// The control: a SIGPIPE sent to leaserun is forwarded.
	p.cmd.Process.Signal(syscall.SIGPIPE)
	e2ePoll(t, 20*time.Second, "the SIGPIPE sent to leaserun to reach the child", func() bool {
		data, _ := os.ReadFile(pipes)
		return len(data) > 0
	})
	os.WriteFile(stop, nil, 0o644)
	if code := p.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("leaserun exited %d; stderr:\n%s", code, p.Stderr())
	}
	if data, _ := os.ReadFile(pipes); strings.Count(string(data), "PIPE") != 1 {
		t.Fatalf("the child got %d SIGPIPEs, want the one sent with kill", strings.Count(string(data), "PIPE"))
	}
}

// "leaserun release --epoch N" with a stale N changes nothing; with the
// holder's N it frees the lease at once (a standby takes it, long before
// the TTL), and the old holder, still alive, loses the lease at its next
// renewal: its child is killed and it exits 76.
func TestReleaseEpoch(t *testing.T) {
	opsReleaseEpoch(t, filepath.Join(t.TempDir(), "r.lease"), nil)
}

// opsReleaseEpoch is TestReleaseEpoch on the lease at path, with env added
// to the environment of every leaserun.
func opsReleaseEpoch(t *testing.T, path string, env []string) {
	dir := t.TempDir()
	const ttl = 9 * time.Second
	flags := []string{"--lease", path, "--wait", "--ttl", ttl.String()}
	logA, logB := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	first := opsStart(t, dir, "first", env, "--lease", path, "--", "true")
	if code := first.Wait(t, 20*time.Second); code != 0 {
		t.Fatal(first.Stderr())
	}
	a := e2eStartLeaserun(t, dir, "a", nil, append(slices.Clone(env), e2eChildEnv(logA, e2eEnvHold+"=60s", e2eEnvHeartbeat+"=20ms")...), flags...)
	ca := e2eWaitChildStart(t, 20*time.Second, logA, a)
	b := e2eStartLeaserun(t, dir, "b", nil, append(slices.Clone(env), e2eChildEnv(logB, e2eEnvHold+"=60s")...), flags...)
	_, before := opsStatus(t, env, path)

	release := func(epoch uint64) (int, string) {
		cmd := exec.Command(leaserunBin, "release", "--lease", path, "--epoch", strconv.FormatUint(epoch, 10))
		cmd.Env = append(e2eBaseEnv(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	code, out := release(ca.Epoch - 1)
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, path) || !strings.Contains(out, ca.Instance) {
		t.Fatalf("release of a stale epoch: %d %q; want 1 and one line naming the lease and who holds", code, out)
	}
	code, after := opsStatus(t, env, path)
	if code != 0 || after["instance_id"] != before["instance_id"] || after["epoch"] != before["epoch"] || after["state"] != "held" {
		t.Fatalf("a stale release changed the lease: %v -> %v", before, after)
	}
	if a.Exited() || opsDead(ca.PID) {
		t.Fatal("a stale release stopped the holder")
	}

	code, out = release(ca.Epoch)
	released := time.Now()
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "released epoch") {
		t.Fatalf("release at the holder's epoch: %d %q", code, out)
	}
	cb := e2eWaitChildStart(t, 20*time.Second, logB, b)
	if took := time.Since(released); took > ttl/2 {
		t.Errorf("the standby took the lease %v after the release: not at once (TTL %v)", took, ttl)
	}
	if cb.Epoch != ca.Epoch+1 {
		t.Errorf("the standby's epoch %d, want %d", cb.Epoch, ca.Epoch+1)
	}
	if code := a.Wait(t, 20*time.Second); code != 76 {
		t.Fatalf("the old holder exited %d, want 76; stderr:\n%s", code, a.Stderr())
	}
	if e := a.Stderr(); !strings.Contains(e, "lease lost") || !strings.Contains(e, path) {
		t.Errorf("the old holder's log does not say it lost the lease:\n%s", e)
	}
	c, err := e2eReadChildLog(logA)
	if err != nil {
		t.Fatal(err)
	}
	if c.End != nil || !opsDead(c.PID) {
		t.Errorf("the old holder's child was not killed")
	}
	// The overlap a forced release allows is bounded by one renewal: the
	// old child's last heartbeat came at most a renewal after the new
	// child started (fence with the epoch).
	t.Logf("old child's last activity %s after the new child started", e2eMs(c.Last().Mono-cb.Start.Mono))
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.Wait(t, 20*time.Second)
}
