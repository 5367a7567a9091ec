package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// unitFile reads examples/systemd/myjob.service into its Key=Value lines.
func unitFile(t *testing.T) (text string, keys map[string]string) {
	t.Helper()
	data, err := os.ReadFile("../examples/systemd/myjob.service")
	if err != nil {
		t.Fatal(err)
	}
	keys = map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	return string(data), keys
}

// TestSystemdUnitCommandLine runs the example unit's ExecStart with the
// lease in a temp dir and true as the job: its flags must be valid,
// TimeoutStopSec must leave leaserun its --grace, and the journal must get
// every event, not only what went wrong.
func TestSystemdUnitCommandLine(t *testing.T) {
	_, keys := unitFile(t)
	for k, want := range map[string]string{"KillMode": "mixed", "Restart": "always"} {
		if keys[k] != want {
			t.Errorf("%s=%s, want %s", k, keys[k], want)
		}
	}
	args := strings.Fields(keys["ExecStart"])
	if len(args) == 0 || filepath.Base(args[0]) != "leaserun" {
		t.Fatalf("ExecStart=%s does not run leaserun", keys["ExecStart"])
	}
	var grace time.Duration
	for i, a := range args {
		switch {
		case a == "--lease":
			args[i+1] = filepath.Join(t.TempDir(), "myjob.lease")
		case a == "--grace":
			var err error
			if grace, err = time.ParseDuration(args[i+1]); err != nil {
				t.Fatal(err)
			}
		case a == "--":
			args = append(args[:i+1], "true")
		}
	}
	stop, err := time.ParseDuration(keys["TimeoutStopSec"])
	if err != nil {
		t.Fatal(err)
	}
	if grace == 0 || stop <= grace {
		t.Errorf("TimeoutStopSec=%v must exceed --grace %v", stop, grace)
	}
	out, err := exec.Command(leaserunBin, args[1:]...).CombinedOutput()
	if err != nil {
		t.Errorf("%v: %v\n%s", args, err, out)
	}
	for _, event := range []string{"msg=acquired", `msg="child started"`, `msg="child exited"`, "msg=released"} {
		if !strings.Contains(string(out), event) {
			t.Errorf("%v: no %s in the log:\n%s", args, event, out)
		}
	}
}

// TestSystemdUnitInREADME: the README's unit is the example's, without its
// comments.
func TestSystemdUnitInREADME(t *testing.T) {
	text, _ := unitFile(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```ini\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("no ini block in the README")
	}
	settings := func(text string) []string {
		var lines []string
		for line := range strings.Lines(text) {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				lines = append(lines, line)
			}
		}
		return lines
	}
	if got, want := settings(block), settings(text); !slices.Equal(got, want) {
		t.Errorf("the README's unit:\n%s\nthe example's, without comments:\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSystemdUnitVerifies has systemd parse the example unit.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed:", err)
	}
	text, _ := unitFile(t)
	dir := t.TempDir()
	text = strings.NewReplacer(
		"/usr/local/bin/leaserun", leaserunBin,
		"/usr/local/bin/myjob", "/bin/true",
		"/srv/shared", dir,
	).Replace(text)
	unit := filepath.Join(dir, "myjob.service")
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 even for a value it ignores, but says so.
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
