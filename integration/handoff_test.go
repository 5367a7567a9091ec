//go:build unix

package integration

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHandOffToStoreExecutable: leaserun links only the file store. A lease
// in S3 or etcd is handed, with the whole command line, to leaserun-s3 or
// leaserun-etcd, found beside leaserun and then on PATH, which takes
// leaserun's place: same PID, same arguments. Without it, leaserun says
// what to install (exit 74); a scheme no store serves is a usage error. So
// for a run with --health-addr, which leaserun-http serves.
func TestHandOffToStoreExecutable(t *testing.T) {
	bin := t.TempDir()
	leaserun := filepath.Join(bin, "leaserun")
	copyFile(t, leaserunBin, leaserun)
	// A stand-in for the store's executable: it says its PID and arguments.
	fake := "#!/bin/sh\necho \"pid=$$ argv0=$(basename \"$0\") args=$*\"\nexit 7\n"
	onPath := t.TempDir()

	// run runs leaserun with args from a shell that execs it, and returns
	// the shell's PID, what leaserun printed and its status.
	run := func(path string, args ...string) (shellPID, stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command("/bin/sh", append([]string{"-c", `echo "$$"; exec "$@"`, "sh", leaserun}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		pid, rest, _ := strings.Cut(out.String(), "\n")
		return pid, rest, errb.String(), cmd.ProcessState.ExitCode()
	}

	for _, tc := range []struct{ name, exe, location string }{
		{"s3 beside", "leaserun-s3", "s3://bucket/jobs/report.lease"},
		{"etcd beside", "leaserun-etcd", "etcd://127.0.0.1:2379/jobs/report"},
		{"etcds beside", "leaserun-etcd", "etcds://127.0.0.1:2379/jobs/report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeExecutable(t, filepath.Join(bin, tc.exe), fake)
			defer os.Remove(filepath.Join(bin, tc.exe))
			for _, args := range [][]string{
				{"--lease", tc.location, "--ttl", "3s", "--", "echo", "hi"},
				{"status", "--lease", tc.location},
				{"-l", tc.location, "--", "true"},
				{"run", "--lease=" + tc.location, "--wait", "--", "true"},
				// Handed before it is parsed: the store's executable,
				// which parses as leaserun does, says what is wrong.
				{"--lease", tc.location, "--no-such-flag", "--", "true"},
			} {
				pid, out, errb, code := run("/usr/bin:/bin", args...)
				want := "pid=" + pid + " argv0=" + tc.exe + " args=" + strings.Join(args, " ") + "\n"
				if out != want || code != 7 {
					t.Errorf("leaserun %q printed %q (stderr %q), status %d; want %q, status 7 (the store's executable in leaserun's place)",
						args, out, errb, code, want)
				}
			}
		})
	}

	t.Run("LEASERUN_LEASE", func(t *testing.T) {
		writeExecutable(t, filepath.Join(bin, "leaserun-etcd"), fake)
		defer os.Remove(filepath.Join(bin, "leaserun-etcd"))
		t.Setenv("LEASERUN_LEASE", "etcd://127.0.0.1:2379/jobs/report")
		for _, args := range [][]string{{"--", "true"}, {"status"}} {
			pid, out, errb, code := run("/usr/bin:/bin", args...)
			if want := "pid=" + pid + " argv0=leaserun-etcd args=" + strings.Join(args, " ") + "\n"; out != want || code != 7 {
				t.Errorf("LEASERUN_LEASE=etcd://..., leaserun %q printed %q (stderr %q), status %d; want %q, status 7", args, out, errb, code, want)
			}
		}
		// A --lease given wins over the environment's.
		if _, out, errb, code := run("/usr/bin:/bin", "--lease", filepath.Join(t.TempDir(), "job.lease"), "--", "true"); code != 0 || out != "" {
			t.Errorf("--lease FILE with LEASERUN_LEASE=etcd://...: status %d, stdout %q, stderr %q; want 0, the file lease run here", code, out, errb)
		}
	})

	t.Run("help is leaserun's own", func(t *testing.T) {
		writeExecutable(t, filepath.Join(bin, "leaserun-etcd"), fake)
		defer os.Remove(filepath.Join(bin, "leaserun-etcd"))
		for _, args := range [][]string{
			{"--lease", "etcd://127.0.0.1:2379/k", "--help"},
			{"-h", "--lease", "etcd://127.0.0.1:2379/k", "--", "true"},
			{"--version", "--lease", "etcd://127.0.0.1:2379/k"},
		} {
			_, out, errb, code := run("/usr/bin:/bin", args...)
			if code != 0 || strings.Contains(out, "pid=") || out == "" {
				t.Errorf("leaserun %q printed %q (stderr %q), status %d; want leaserun's own help or version, status 0", args, out, errb, code)
			}
		}
	})

	// A run with --health-addr (the flag or LEASERUN_HEALTH_ADDR) of a
	// file lease is handed to leaserun-http; of a lease in S3, once, to
	// leaserun-s3, which links the health server too.
	for _, tc := range []struct {
		name, exe, env string
		args           []string
	}{
		{"health-addr beside", "leaserun-http", "", []string{"--lease", "/tmp/x.lease", "--health-addr", ":8080", "--", "true"}},
		{"health-addr env beside", "leaserun-http", ":8080", []string{"--lease", "/tmp/x.lease", "--", "true"}},
		{"health-addr run beside", "leaserun-http", "", []string{"run", "--lease", "file:///tmp/x.lease", "--health-addr", "127.0.0.1:0", "--", "true"}},
		{"health-addr s3 beside", "leaserun-s3", "", []string{"--lease", "s3://b/k", "--health-addr", ":8080", "--", "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LEASERUN_HEALTH_ADDR", tc.env)
			writeExecutable(t, filepath.Join(bin, tc.exe), fake)
			defer os.Remove(filepath.Join(bin, tc.exe))
			pid, out, errb, code := run("/usr/bin:/bin", tc.args...)
			if want := "pid=" + pid + " argv0=" + tc.exe + " args=" + strings.Join(tc.args, " ") + "\n"; out != want || code != 7 {
				t.Errorf("leaserun %q printed %q (stderr %q), status %d; want %q, status 7", tc.args, out, errb, code, want)
			}
		})
	}

	t.Run("health-addr on PATH", func(t *testing.T) {
		writeExecutable(t, filepath.Join(onPath, "leaserun-http"), fake)
		defer os.Remove(filepath.Join(onPath, "leaserun-http"))
		pid, out, errb, code := run(onPath+":/usr/bin:/bin", "--lease", "/tmp/x.lease", "--health-addr", ":8080", "--", "true")
		if want := "pid=" + pid + " argv0=leaserun-http args=--lease /tmp/x.lease --health-addr :8080 -- true\n"; out != want || code != 7 {
			t.Errorf("leaserun printed %q (stderr %q), status %d; want %q, status 7", out, errb, code, want)
		}
	})

	t.Run("health-addr missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "job.lease")
		for _, env := range []string{"", ":8080"} {
			t.Setenv("LEASERUN_HEALTH_ADDR", env)
			args := []string{"--lease", path, "--health-addr", ":8080", "--", "true"}
			if env != "" {
				args = []string{"--lease", path, "--", "true"}
			}
			_, out, errb, code := run("/usr/bin:/bin", args...)
			if code != 74 || out != "" || !strings.Contains(errb, "leaserun-http") || !strings.Contains(errb, "--health-addr :8080") {
				t.Errorf("LEASERUN_HEALTH_ADDR=%q, without leaserun-http: status %d, stdout %q, stderr %q; want 74 and a line naming leaserun-http and the flag",
					env, code, out, errb)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("the lease file was made: %v", err)
			}
		}
	})

	t.Run("s3 on PATH", func(t *testing.T) {
		writeExecutable(t, filepath.Join(onPath, "leaserun-s3"), fake)
		defer os.Remove(filepath.Join(onPath, "leaserun-s3"))
		pid, out, errb, code := run(onPath+":/usr/bin:/bin", "--lease", "s3://b/k", "--", "true")
		if want := "pid=" + pid + " argv0=leaserun-s3 args=--lease s3://b/k -- true\n"; out != want || code != 7 {
			t.Errorf("leaserun printed %q (stderr %q), status %d; want %q, status 7", out, errb, code, want)
		}
	})

	t.Run("missing", func(t *testing.T) {
		_, out, errb, code := run("/usr/bin:/bin", "--lease", "s3://b/k", "--", "true")
		if code != 74 || out != "" || !strings.Contains(errb, "leaserun-s3") || !strings.Contains(errb, "s3://b/k") {
			t.Errorf("without leaserun-s3: status %d, stdout %q, stderr %q; want 74 and a line naming leaserun-s3 and the lease", code, out, errb)
		}
		_, out, errb, code = run("/usr/bin:/bin", "--lease", "etcd://127.0.0.1:2379/k", "--", "true")
		if code != 74 || out != "" || !strings.Contains(errb, "leaserun-etcd") || !strings.Contains(errb, "etcd://127.0.0.1:2379/k") {
			t.Errorf("without leaserun-etcd: status %d, stdout %q, stderr %q; want 74 and a line naming leaserun-etcd and the lease", code, out, errb)
		}
		// What is wrong with the command line comes first.
		_, out, errb, code = run("/usr/bin:/bin", "--lease", "etcd://127.0.0.1:2379/k", "--no-such-flag", "--", "true")
		if code != 64 || out != "" || !strings.Contains(errb, "--no-such-flag") {
			t.Errorf("without leaserun-etcd, an unknown flag: status %d, stdout %q, stderr %q; want 64 and a line naming the flag", code, out, errb)
		}
	})

	t.Run("unknown scheme", func(t *testing.T) {
		_, _, errb, code := run("/usr/bin:/bin", "--lease", "gs://b/k", "--", "true")
		if code != 64 || !strings.Contains(errb, "--lease gs://b/k") || !strings.Contains(errb, "unknown scheme") {
			t.Errorf("gs://: status %d, stderr %q; want 64 and a line naming --lease and the scheme", code, errb)
		}
	})

	t.Run("file URL", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "job.lease")
		_, out, errb, code := run("/usr/bin:/bin", "--lease", "file://"+path, "--", "sh", "-c", `echo "$LEASERUN_LEASE_PATH"`)
		if code != 0 || out != path+"\n" {
			t.Errorf("file://: status %d, stdout %q, stderr %q; want 0 and the path in LEASERUN_LEASE_PATH", code, out, errb)
		}
		if _, out, _, code := run("/usr/bin:/bin", "status", "--lease", path, "--format", "{{.State}}"); code != 1 || out != "released\n" {
			t.Errorf("status of the path the file:// URL named: %q, status %d; want released, 1", out, code)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeExecutable(t, to, string(data))
}

func writeExecutable(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}
