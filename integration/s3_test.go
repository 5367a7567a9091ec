//go:build linux

package integration

// The real leaserun against an S3 server in a process of its own (gofakes3,
// internal/fakes3/cmd/fakes3): leaserun hands an s3:// lease to leaserun-s3
// beside it, which takes its place.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/procstat"
)

// s3Built builds leaserun-s3 beside leaserunBin, and the fake S3 server,
// once.
var s3Built = sync.OnceValues(func() (string, error) {
	dir := filepath.Dir(leaserunBin)
	for pkg, out := range map[string]string{
		"github.com/leaserun/leaserun/cmd/leaserun-s3":            filepath.Join(dir, "leaserun-s3"),
		"github.com/leaserun/leaserun/internal/fakes3/cmd/fakes3": filepath.Join(dir, "fakes3"),
	} {
		build := exec.Command("go", "build", "-o", out, pkg)
		if b, err := build.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building %s: %v\n%s", pkg, err, b)
		}
	}
	return filepath.Join(dir, "fakes3"), nil
})

// s3Server is a fake S3 in a process of its own.
type s3Server struct {
	URL string
	cmd *exec.Cmd
}

const s3Bucket = "leases"

// startS3 starts a fake S3 server process with the bucket s3Bucket; a
// cleanup ends it.
func startS3(t *testing.T) *s3Server {
	t.Helper()
	bin, err := s3Built()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-bucket", s3Bucket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("fake S3: %v", err)
	}
	return &s3Server{URL: strings.TrimSpace(line), cmd: cmd}
}

// location is the lease at key on s, through endpoint (s.URL if empty).
func (s *s3Server) location(key, endpoint string) string {
	if endpoint == "" {
		endpoint = s.URL
	}
	return "s3://" + s3Bucket + "/" + key + "?endpoint=" + endpoint
}

// record reads the object at key over plain HTTP, as aws s3 cp s3://B/K -
// would: the record's JSON.
func (s *s3Server) record(t *testing.T, key string) map[string]any {
	t.Helper()
	resp, err := http.Get(s.URL + "/" + s3Bucket + "/" + key)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", key, resp.Status, body)
	}
	var rec map[string]any
	if err := json.Unmarshal(body, &rec); err != nil {
		t.Fatalf("the object at %s is not JSON: %v: %s", key, err, body)
	}
	return rec
}

// s3Env is the environment of leaserun for the fake S3: credentials of
// the tests' own, and nothing from this machine's AWS configuration.
func s3Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=leaserun-test-key",
		"AWS_SECRET_ACCESS_KEY=leaserun-test-secret",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PROFILE=", "AWS_ENDPOINT_URL=", "AWS_ENDPOINT_URL_S3=",
	}
}

// leaserunS3 runs leaserun to its end with args and returns its stdout,
// stderr and status.
func leaserunS3(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(leaserunBin, args...)
	cmd.Env = append(e2eBaseEnv(), s3Env()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestS3ContentionAndStatus: while one leaserun holds an S3 lease, another
// exits 75 naming the holder, status says held (exit 0) with the holder's
// record, and the object holds that record as JSON; after the holder's
// command ends, the lease is released (status exit 1), at the same epoch,
// and the next run gets a higher one.
func TestS3ContentionAndStatus(t *testing.T) {
	srv := startS3(t)
	dir := t.TempDir()
	loc := srv.location("jobs/contention.lease", "")
	log := filepath.Join(dir, "holder.log")
	until := filepath.Join(dir, "done")
	holder := e2eStartLeaserun(t, dir, "holder", nil,
		append(s3Env(), e2eChildEnv(log, e2eEnvHold+"=60s", e2eEnvHoldUntil+"="+until)...),
		"--lease", loc, "--ttl", "3s")
	c := e2eWaitChildStart(t, 30*time.Second, log, holder)
	if c.Epoch != 1 {
		t.Errorf("the holder's child got epoch %d, want 1", c.Epoch)
	}

	_, errb, code := leaserunS3(t, "--lease", loc, "--", "true")
	if code != 75 || !strings.Contains(errb, "held by "+c.Instance) {
		t.Errorf("a second leaserun: status %d, stderr %q; want 75 naming the holder %s", code, errb, c.Instance)
	}

	out, errb, code := leaserunS3(t, "status", "--lease", loc)
	var st struct {
		State      string `json:"state"`
		InstanceID string `json:"instance_id"`
		Epoch      uint64 `json:"epoch"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || st.State != "held" || st.InstanceID != c.Instance || st.Epoch != 1 {
		t.Errorf("status of a held lease: %q (%v), stderr %q, status %d; want held by %s at epoch 1, status 0", out, err, errb, code, c.Instance)
	}
	if rec := srv.record(t, "jobs/contention.lease"); rec["instance_id"] != c.Instance {
		t.Errorf("the object holds %v, want the holder's record", rec)
	}

	if err := os.WriteFile(until, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := holder.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the holder exited %d; stderr:\n%s", code, holder.Stderr())
	}
	out, errb, code = leaserunS3(t, "status", "--lease", loc, "--format", "{{.State}} {{.Epoch}}")
	if code != 1 || out != "released 1\n" {
		t.Errorf("status after the holder's command ended: %q, stderr %q, status %d; want \"released 1\", status 1", out, errb, code)
	}
	out, errb, code = leaserunS3(t, "--lease", loc, "--", "sh", "-c", `echo "$LEASERUN_EPOCH $LEASERUN_LEASE_PATH"`)
	if code != 0 || out != "2 "+loc+"\n" {
		t.Errorf("the next run printed %q (stderr %q), status %d; want epoch 2 and the location", out, errb, code)
	}
}

// TestS3CrashTakeover: the holding leaserun is SIGKILLed; its child dies
// with it, and a standby takes the lease over once it has seen the record
// unchanged for a TTL, never while the old child lived.
func TestS3CrashTakeover(t *testing.T) {
	srv := startS3(t)
	dir := t.TempDir()
	const ttl = 2 * time.Second
	flags := []string{"--lease", srv.location("crash.lease", ""), "--ttl", ttl.String()}
	oldLog := filepath.Join(dir, "old.log")
	holder := e2eStartLeaserun(t, dir, "holder", nil,
		append(s3Env(), e2eChildEnv(oldLog, e2eEnvHold+"=60s", e2eEnvHeartbeat+"=5ms")...), flags...)
	old := e2eWaitChildStart(t, 30*time.Second, oldLog, holder)
	oldStat, err := procstat.Read(old.PID)
	if err != nil {
		t.Fatal(err)
	}
	death := e2eWatchDeath(t, old.PID)
	newLog := filepath.Join(dir, "new.log")
	standby := e2eStartLeaserun(t, dir, "standby", nil,
		append(s3Env(), e2eChildEnv(newLog, e2eEnvHold+"=50ms", e2eEnvOld+"="+fmt.Sprintf("%d:%d", old.PID, oldStat.StartTime))...),
		append(flags, "--wait", "--log-level", "info")...)
	e2ePoll(t, 30*time.Second, "the standby to wait", func() bool {
		if standby.Exited() {
			t.Fatalf("the standby exited early; stderr:\n%s", standby.Stderr())
		}
		return strings.Contains(standby.Stderr(), "waiting for the lease")
	})
	killed := time.Now()
	holder.cmd.Process.Signal(syscall.SIGKILL)
	holder.Wait(t, 10*time.Second)
	if !death.Wait(10 * time.Second) {
		t.Fatal("the old child outlived its leaserun")
	}
	c := e2eWaitChildStart(t, 30*time.Second, newLog, standby)
	took := logTime(t, standby, "acquired").Sub(killed)
	t.Logf("the standby acquired %v after the kill (ttl %v)", took, ttl)
	if took > ttl+ttl/2+time.Second {
		t.Errorf("takeover took %v, more than the TTL %v and a margin", took, ttl)
	}
	if c.Epoch != old.Epoch+1 {
		t.Errorf("the new epoch is %d after %d", c.Epoch, old.Epoch)
	}
	if code := standby.Wait(t, 30*time.Second); code != 0 {
		t.Errorf("the standby exited %d; stderr:\n%s", code, standby.Stderr())
	}
}

// TestS3HungServer: the S3 server is stopped (SIGSTOP) while leaserun
// holds. Renewals hang, and the guard stops the child before the lease can
// lapse: the last renewal that succeeded started before the server
// stopped, so the lease lapses at the latest one TTL after that. Once the
// server resumes, leaserun exits 76.
func TestS3HungServer(t *testing.T) {
	srv := startS3(t)
	dir := t.TempDir()
	const ttl = 3 * time.Second
	log := filepath.Join(dir, "child.log")
	holder := e2eStartLeaserun(t, dir, "holder", nil,
		append(s3Env(), e2eChildEnv(log, e2eEnvHold+"=60s", e2eEnvHeartbeat+"=5ms", e2eEnvIgnoreTerm+"=1")...),
		"--lease", srv.location("hung.lease", ""), "--ttl", ttl.String())
	c := e2eWaitChildStart(t, 30*time.Second, log, holder)
	death := e2eWatchDeath(t, c.PID)
	e2ePoll(t, 2*ttl, "a renewal", func() bool {
		rec := srv.record(t, "hung.lease")
		return rec["renewed_at"] != rec["acquired_at"]
	})

	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hungWall := wallNow()
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			srv.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	if !death.Wait(ttl + 10*time.Second) {
		t.Fatalf("the child still runs %v after the server stopped", ttl+10*time.Second)
	}
	c, err := e2eReadChildLog(log)
	if err != nil {
		t.Fatal(err)
	}
	lapse := hungWall + ttl.Nanoseconds()
	last := c.Last()
	t.Logf("the child's last heartbeat came %v after the server stopped, %v before the lease could lapse at the latest",
		time.Duration(last.Wall-hungWall), time.Duration(lapse-last.Wall))
	if last.Wall >= lapse {
		t.Errorf("the child was active %v after the lease could lapse", time.Duration(last.Wall-lapse))
	}
	if len(c.Terms) == 0 {
		t.Errorf("the child never got the stop signal before SIGKILL")
	}
	resume()
	if code := holder.Wait(t, 30*time.Second); code != 76 {
		t.Errorf("leaserun exited %d, want 76; stderr:\n%s", code, holder.Stderr())
	}
}

// TestS3NotEnforced: a proxy before the server drops the conditional
// headers. leaserun proves enforcement before it writes the lease, finds
// it missing, and exits 74 saying so, without running the command or
// writing the lease.
func TestS3NotEnforced(t *testing.T) {
	srv := startS3(t)
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the signature names the host the client sent
		r.Out.Header.Del("If-Match")
		r.Out.Header.Del("If-None-Match")
	}})
	defer proxy.Close()
	out, errb, code := leaserunS3(t, "--lease", srv.location("unguarded.lease", proxy.URL), "--", "echo", "ran")
	if code != 74 || out != "" || !strings.Contains(errb, "does not enforce conditional writes") {
		t.Errorf("through a proxy that drops the conditions: status %d, stdout %q, stderr %q; want 74 and the reason", code, out, errb)
	}
	resp, err := http.Get(srv.URL + "/" + s3Bucket + "/unguarded.lease")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the lease's object: %s, want none", resp.Status)
	}
}

// TestS3BadLocation: a bad s3:// location is a usage error naming --lease,
// and a password in it is never shown.
func TestS3BadLocation(t *testing.T) {
	if _, err := s3Built(); err != nil {
		t.Fatal(err)
	}
	for loc, want := range map[string]string{
		"s3://bucket":                                 "no key",
		"s3://bucket/k?regoin=eu-west-1":              "unknown parameter",
		"s3://AKIAEXAMPLE:hunter2@bucket/k":           "credentials",
		"s3://bucket/k?endpoint=http://u:hunter2@h:1": "credentials",
	} {
		for _, cmd := range [][]string{{"--lease", loc, "--", "true"}, {"status", "--lease", loc}} {
			_, errb, code := leaserunS3(t, cmd...)
			if code != 64 || !strings.Contains(errb, "--lease") || !strings.Contains(errb, want) || strings.Contains(errb, "hunter2") {
				t.Errorf("leaserun %q: status %d, stderr %q; want 64, naming --lease and saying %q, without the password", cmd, code, errb, want)
			}
		}
	}
}
