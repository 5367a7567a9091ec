package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// leaserun runs Main in-process.
func leaserun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lease")
	for _, tc := range []struct {
		args []string
		flag string // named in the one line on stderr
	}{
		{[]string{"--", "true"}, "--lease"},
		{[]string{"--lease", p}, "command"},
		{[]string{"--lease", p, "--ttl", "0", "--", "true"}, "--ttl"},
		{[]string{"--lease", p, "--ttl", "-1s", "--", "true"}, "--ttl"},
		{[]string{"--lease", p, "--ttl", "soon", "--", "true"}, "--ttl"},
		{[]string{"--lease", p, "--renew", "15s", "--", "true"}, "--renew"},
		{[]string{"--lease", p, "--renew", "0", "--", "true"}, "--renew"},
		{[]string{"--lease", p, "--grace", "10s", "--", "true"}, "--grace"},
		{[]string{"--lease", p, "--grace=-1s", "--", "true"}, "--grace"},
		{[]string{"--lease", p, "--wait", "--wait-timeout=-1s", "--", "true"}, "--wait-timeout"},
		{[]string{"--lease", p, "--clock-skew=-1s", "--", "true"}, "--clock-skew"},
		{[]string{"--lease", p, "--clock-skew", "a bit", "--", "true"}, "--clock-skew"},
		{[]string{"--lease", p, "--stop-signal", "NOPE", "--", "true"}, "--stop-signal"},
		{[]string{"--lease", p, "--held-exit-code", "256", "--", "true"}, "--held-exit-code"},
		{[]string{"--lease", p, "--held-exit-code", "x", "--", "true"}, "--held-exit-code"},
		{[]string{"--lease", p, "--meta", "novalue", "--", "true"}, "--meta"},
		{[]string{"--lease", p, "--meta", "=v", "--", "true"}, "--meta"},
		{[]string{"--lease", p, "--log-format", "xml", "--", "true"}, "--log-format"},
		{[]string{"--lease", p, "--log-level", "loud", "--", "true"}, "--log-level"},
		{[]string{"--lease", p, "--nope", "--", "true"}, "--nope"},
		{[]string{"--lease", p, "--max-runtime=-1s", "--", "true"}, "--max-runtime"},
		{[]string{"--lease", p, "--max-runtime", "long", "--", "true"}, "--max-runtime"},
		{[]string{"--lease", p, "--once-per=-1h", "--", "true"}, "--once-per"},
		{[]string{"--lease", p, "--once-per", "daily", "--", "true"}, "--once-per"},
		{[]string{"--lease", p, "--health-addr", "8080", "--", "true"}, "--health-addr"},
		{[]string{"--lease", p, "--health-addr", ":99999", "--", "true"}, "--health-addr"},
		{[]string{"--lease", p, "--health-addr", ":http", "--", "true"}, "--health-addr"},
		{[]string{"release", "--lease", p}, "--epoch"},
		{[]string{"release", "--lease", p, "--epoch", "0"}, "--epoch"},
		{[]string{"release", "--lease", p, "--epoch", "-1"}, "--epoch"},
		{[]string{"release", "--lease", p, "--epoch", "x"}, "--epoch"},
		{[]string{"release", "--epoch", "1"}, "--lease"},
		{[]string{"release", "--lease", "ftp://x/y", "--epoch", "1"}, "--lease"},
		{[]string{"status"}, "--lease"},
		{[]string{"status", "--lease", p, "--format", "{{"}, "--format"},
		{[]string{"status", "--lease", p, "--clock-skew=-1s"}, "--clock-skew"},
		{[]string{"status", "--lease", ""}, "--lease"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := leaserun(t, tc.args...)
			if code != 64 {
				t.Errorf("status %d, want 64", code)
			}
			if stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.flag) {
				t.Errorf("want one line on stderr naming %s, got stdout %q, stderr %q", tc.flag, stdout, stderr)
			}
		})
	}
}

// --stop-signal takes a name, with or without SIG and in any case, or a
// number.
func TestStopSignalNames(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lease")
	for _, s := range []string{"TERM", "SIGTERM", "term", "sigterm", "15", " TERM ", "usr1"} {
		if code, _, stderr := leaserun(t, "--lease", p, "--stop-signal", s, "--", "true"); code != 0 {
			t.Errorf("--stop-signal %q: status %d, stderr %q", s, code, stderr)
		}
	}
	for _, s := range []string{"", "FOO", "SIG", "0", "-1", "1000", "TERM2"} {
		if code, _, stderr := leaserun(t, "--lease", p, "--stop-signal="+s, "--", "true"); code != 64 || !strings.Contains(stderr, "--stop-signal") {
			t.Errorf("--stop-signal %q: status %d, stderr %q; want 64 naming the flag", s, code, stderr)
		}
	}
}

func TestEnvironmentVariables(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lease")
	t.Setenv("LEASERUN_LEASE", p)
	t.Setenv("LEASERUN_TTL", "bad")
	if code, _, stderr := leaserun(t, "--", "true"); code != 64 || !strings.Contains(stderr, "LEASERUN_TTL") {
		t.Errorf("a bad LEASERUN_TTL: status %d, stderr %q", code, stderr)
	}
	t.Setenv("LEASERUN_TTL", "2s")
	t.Setenv("LEASERUN_RENEW", "2s")
	if code, _, stderr := leaserun(t, "--", "true"); code != 64 || !strings.Contains(stderr, "--renew") {
		t.Errorf("LEASERUN_RENEW = LEASERUN_TTL: status %d, stderr %q", code, stderr)
	}
	t.Setenv("LEASERUN_RENEW", "")
	os.Unsetenv("LEASERUN_RENEW")
	t.Setenv("LEASERUN_LOG_LEVEL", "error")
	rec := filepath.Join(t.TempDir(), "record")
	if code, _, stderr := leaserun(t, "--", "sh", "-c", `test "$LEASERUN_LEASE_PATH" = "`+p+`" && cat "$LEASERUN_LEASE_PATH" > `+rec); code != 0 || stderr != "" {
		t.Errorf("status %d, stderr %q; want 0 and quiet", code, stderr)
	}
	var r lease.Record
	if b, err := os.ReadFile(rec); err != nil || json.Unmarshal(b, &r) != nil || r.TTL != 2*time.Second {
		t.Errorf("the record while held: %+v, %v; want a ttl of 2s from LEASERUN_TTL", r, err)
	}
	// An empty variable is unset, but --help still names it.
	t.Setenv("LEASERUN_TTL", "")
	t.Setenv("LEASERUN_WAIT", "")
	if code, _, stderr := leaserun(t, "--", "true"); code != 0 || stderr != "" {
		t.Errorf("empty LEASERUN_TTL and LEASERUN_WAIT: status %d, stderr %q; want 0 and quiet", code, stderr)
	}
	if _, stdout, _ := leaserun(t, "run", "--help"); !strings.Contains(stdout, "$LEASERUN_TTL") || !strings.Contains(stdout, "$LEASERUN_WAIT") {
		t.Errorf("run --help with LEASERUN_TTL and LEASERUN_WAIT empty does not name them:\n%s", stdout)
	}
}

func TestRunStatuses(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lease")
	notExec := filepath.Join(dir, "notexec")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		line string // in the one line on stderr; "" for none
	}{
		{[]string{"--lease", p, "--", "sh", "-c", "exit 3"}, 3, ""},
		{[]string{"--lease", p, "--", "sh", "-c", "kill -TERM $$"}, 143, ""},
		{[]string{"--lease", p, "sh", "-c", "exit 4"}, 4, ""}, // no --
		{[]string{"run", "--lease", p, "--", "sh", "-c", "exit 5"}, 5, ""},
		{[]string{"-l", p, "-t", "3s", "--renew", "500ms", "--grace", "0", "--stop-signal", "SIGINT", "--", "true"}, 0, ""},
		{[]string{"--lease", p, "--", "no-such-command-leaserun"}, 127, "not found"},
		{[]string{"--lease", p, "--", notExec}, 126, "could not be executed"},
		{[]string{"--lease", filepath.Join(dir, "missing", "lease"), "--", "true"}, 74, filepath.Join(dir, "missing", "lease")},
		{[]string{"--lease", dir, "--", "true"}, 74, dir},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := leaserun(t, tc.args...) // at the default --log-level
			if code != tc.code {
				t.Errorf("status %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if tc.line == "" && stderr != "" || tc.line != "" && (strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.line)) {
				t.Errorf("stderr %q, want one line with %q", stderr, tc.line)
			}
		})
	}
}

// A command named like one of leaserun's own (run, status) is the command
// after --, as any other is.
func TestCommandNamedLikeASubcommand(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lease")
	for name, code := range map[string]string{"status": "6", "run": "7"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nexit "+code+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--lease", p, "--", "status"}, 6},
		{[]string{"--lease", p, "--", "run", "x"}, 7},
		{[]string{"run", "--lease", p, "--", "status"}, 6},
		{[]string{"--log-level", "info", "--lease", p, "--", "status", "--lease", p}, 6},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if code, _, stderr := leaserun(t, tc.args...); code != tc.code {
				t.Errorf("status %d, want %d; stderr %q", code, tc.code, stderr)
			}
		})
	}
}

func TestHeld(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lease")
	l, err := lease.Acquire(p, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	code, _, stderr := leaserun(t, "--lease", p, "--", "true")
	if code != 75 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, p) || !strings.Contains(stderr, l.InstanceID()) {
		t.Errorf("held: status %d, stderr %q; want 75 and a line naming the lease and holder", code, stderr)
	}
	code, _, stderr = leaserun(t, "--lease", p, "--held-exit-code", "0", "--", "true")
	if code != 0 || stderr != "" {
		t.Errorf("held, --held-exit-code 0: status %d, stderr %q; want 0 and silence", code, stderr)
	}
	code, _, stderr = leaserun(t, "--lease", p, "--wait", "--wait-timeout", "100ms", "--held-exit-code", "9", "--log-format", "json", "--", "true")
	if code != 9 {
		t.Errorf("wait timeout: status %d, want 9", code)
	}
	// A timeout implies waiting, as with flock -w: a holder that stops
	// renewing is taken over once its short TTL has been seen to pass.
	q := filepath.Join(t.TempDir(), "lease")
	if _, err := lease.Acquire(q, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := leaserun(t, "--lease", q, "--wait-timeout", "20s", "--", "true"); code != 0 {
		t.Errorf("--wait-timeout without --wait: status %d (%s), want 0 after waiting", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "wait-timeout") || !strings.Contains(last, l.InstanceID()) {
		t.Errorf("the last line %q should name --wait-timeout and the holder", last)
	}
}

func TestStatus(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lease")
	code, stdout, _ := leaserun(t, "status", "--lease", p)
	if code != 1 || strings.TrimSpace(stdout) != "{\n  \"state\": \"free\"\n}" {
		t.Errorf("free: status %d, stdout %q", code, stdout)
	}
	l, err := lease.Acquire(p, time.Minute, lease.WithMeta(map[string]string{"endpoint": "10.0.0.1:80"}))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = leaserun(t, "status", "--lease", p)
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != 0 {
		t.Fatalf("held: status %d, %v: %q", code, err, stdout)
	}
	want := l.Record()
	if got["state"] != "held" || got["instance_id"] != want.InstanceID || got["epoch"] != float64(want.Epoch) ||
		got["expires_at"] != want.ExpiresAt().Format(time.RFC3339Nano) {
		t.Errorf("held: %v, want the record of %+v", got, want)
	}
	code, stdout, _ = leaserun(t, "status", "--lease", p, "--format", "{{.Meta.endpoint}} {{.Meta.nothing}}|{{.State}}")
	if code != 0 || stdout != "10.0.0.1:80 |held\n" {
		t.Errorf("--format: status %d, stdout %q", code, stdout)
	}
	l.Release()
	if code, stdout, _ = leaserun(t, "status", "--lease", p, "--format", "{{.State}}"); code != 1 || stdout != "released\n" {
		t.Errorf("released: status %d, stdout %q", code, stdout)
	}
	if code, _, stderr := leaserun(t, "status", "--lease", p, "--format", "{{.Nope}}"); code != 64 || !strings.Contains(stderr, "--format") {
		t.Errorf("a bad field: status %d, stderr %q", code, stderr)
	}
	if code, _, stderr := leaserun(t, "status", "--lease", filepath.Join(p, "x", "y")); code != 74 || !strings.Contains(stderr, p) {
		t.Errorf("I/O error: status %d, stderr %q", code, stderr)
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"run", "--help"}, {"status", "--help"}} {
		if code, stdout, _ := leaserun(t, args...); code != 0 || !strings.Contains(stdout, "Usage: leaserun") {
			t.Errorf("%v: status %d, stdout %q", args, code, stdout)
		}
	}
	if code, stdout, _ := leaserun(t, "--version"); code != 0 || !strings.HasPrefix(stdout, "leaserun ") || !strings.Contains(stdout, "commit") {
		t.Errorf("--version: status %d, stdout %q", code, stdout)
	}
	version, commit = "v9.9.9", "abc123"
	defer func() { version, commit = "", "" }()
	if _, stdout, _ := leaserun(t, "--version"); stdout != "leaserun v9.9.9 (commit abc123)\n" {
		t.Errorf("--version with ldflags: %q", stdout)
	}
}

func TestLogs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lease")
	if code, _, stderr := leaserun(t, "--lease", p, "--", "true"); code != 0 || stderr != "" {
		t.Errorf("at the default level: status %d, stderr %q; want 0 and silence", code, stderr)
	}
	code, _, stderr := leaserun(t, "--lease", p, "--log-level", "info", "--meta", "endpoint=a=b", "--", "true")
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	for _, event := range []string{"msg=acquired", "instance=", "epoch=2", `msg="child started"`, `msg="child exited"`, "msg=released"} {
		if !strings.Contains(stderr, event) {
			t.Errorf("no %s in the log:\n%s", event, stderr)
		}
	}
	if strings.Contains(stderr, "renewed") {
		t.Errorf("renewals logged at info:\n%s", stderr)
	}
	st, _ := lease.Read(p)
	if st.Record == nil || st.Record.Meta["endpoint"] != "a=b" {
		t.Errorf("--meta: %+v", st.Record)
	}
}

// TestStatusOfSpentLease: a lease that no run can take, since its version
// numbers or epochs are spent (hand-made files can do that), is no free
// lease: status says so with exit 74 and a line naming the path, as a run
// does. A live holder still shows as held.
func TestStatusOfSpentLease(t *testing.T) {
	const top = "18446744073709551615" // math.MaxUint64
	// spoil writes, over the lease at p, the record it has (rec) as the
	// version top, or with the epoch top as the newest version, 3.
	spoilings := map[string]func(t *testing.T, p string, rec []byte){
		"a version named " + top: func(t *testing.T, p string, rec []byte) {
			if err := os.WriteFile(filepath.Join(p+".d", top), rec, 0o666); err != nil {
				t.Fatal(err)
			}
		},
		"a record of epoch " + top: func(t *testing.T, p string, rec []byte) {
			spent := bytes.Replace(rec, []byte(`"epoch":1`), []byte(`"epoch":`+top), 1)
			if bytes.Equal(spent, rec) {
				t.Fatalf("no epoch 1 in %s", rec)
			}
			if err := os.WriteFile(filepath.Join(p+".d", "3"), spent, 0o666); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, spoil := range spoilings {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "lease")
			l, err := lease.Acquire(p, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Renew(); err != nil { // version 2: the spoiled record is 3
				t.Fatal(err)
			}
			held, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(p+".d", "2")); err != nil {
				t.Fatal(err)
			}
			spoil(t, p, held)
			if code, stdout, stderr := leaserun(t, "status", "--lease", p, "--format", "{{.State}}"); code != 0 || stdout != "held\n" {
				t.Errorf("held: status %d, stdout %q, stderr %q; want 0 and held", code, stdout, stderr)
			}
			if code, _, stderr := leaserun(t, "--lease", p, "--", "true"); code != 75 {
				t.Errorf("held: a run's status %d (%q), want 75", code, stderr)
			}

			// Now let it be released, as far as the records say.
			released := bytes.Replace(held, []byte(`"ttl":60000000000`), []byte(`"ttl":0`), 1)
			if bytes.Equal(released, held) {
				t.Fatalf("no ttl of a minute in %s", held)
			}
			for _, v := range []string{top, "3"} {
				os.Remove(filepath.Join(p+".d", v))
			}
			spoil(t, p, released)
			runCode, _, runErr := leaserun(t, "--lease", p, "--", "true")
			code, stdout, stderr := leaserun(t, "status", "--lease", p)
			if code != 74 || stdout != "" || !strings.Contains(stderr, p) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d, stdout %q, stderr %q; want 74 and one line naming %s", code, stdout, stderr, p)
			}
			if runCode != code {
				t.Errorf("a run: status %d (%q), status: %d", runCode, runErr, code)
			}
		})
	}
}
