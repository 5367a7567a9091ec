//go:build linux

package integration

// The user stories of testdata/script/*.txtar: each script drives the real
// leaserun binary (first on PATH) as a user, a cron job, a systemd unit or a
// container entrypoint would. Shell can't say everything a story needs, so
// the scripts get these commands besides testscript's own:
//
//	exitcode N prog [args...]
//	    Run prog in the foreground and require exit status N. Its stdout
//	    and stderr are then what the stdout and stderr commands match.
//	start NAME prog [args...]
//	    Start prog in the background under NAME, in its own process group,
//	    with stdin from /dev/null. It gets the script's environment
//	    (the variables Setup set, those of the contract (LEASERUN_*), and
//	    those named in scriptEnvKeys).
//	waitexit NAME N|SIGNAME
//	    Wait (bounded) for NAME to end and require that it exited with N or
//	    was killed by the signal SIGNAME. Its stdout and stderr are then
//	    what the stdout and stderr commands match.
//	waitout NAME stdout|stderr REGEXP
//	    Wait (bounded) until what NAME wrote so far matches REGEXP.
//	signal [-child] NAME SIG
//	    Send SIG (TERM, SIGTERM or 15) to NAME; with -child, to NAME's only
//	    child process instead (the PID 1 of unshare --pid --fork).
//	waitfile [-lines N] FILE...
//	    Wait (bounded) until each FILE exists (and has at least N lines).
//	[!] proc SUBSTRING
//	    Wait (bounded) until some process's command line contains
//	    SUBSTRING (as pgrep -f would find it); with !, until none does.
//	waitstate LEASE STATE
//	    Wait (bounded) until "leaserun status --lease LEASE" reports STATE.
//	[!] json FILE KEY[.KEY...] [REGEXP]
//	    FILE (or stdout, stderr) is one JSON object whose KEY exists (with
//	    a value whose text matches REGEXP); with !, KEY is absent.
//	increasing FILE...
//	    Each FILE holds one decimal number, each greater than the one before.
//	envfile VAR FILE
//	    Set $VAR to the content of FILE (or stdout, stderr), trimmed.
//	oneslot DURATION
//	    If the current slot of length DURATION (as --once-per has them)
//	    ends within 15s, wait until the next one begins, so that the
//	    commands after it run in one slot.
//
// Conditions: [root] (running as root), [unshare] (unshare --pid --fork
// --mount-proc works here; when not, $UNSHARE_WHY says why).
//
// Setup puts the directory of leaserunBin first on PATH, makes a scratch
// directory for leases, $LEASES, and sets $MARK to a number unique to the
// script, for "sleep $MARK" processes that proc can look for.
//
// No command waits a fixed time: every wait polls for its condition and
// gives up, failing the script, after scriptPatience.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/procstat"
	"github.com/leaserun/leaserun/lease"
)

// scriptPatience bounds every wait of the scripts' commands. It is generous:
// the waits end as soon as their condition holds, and only a broken
// leaserun, or a machine far busier than any CI runner, should reach it.
const scriptPatience = 30 * time.Second

// scriptPollEvery is how often the waits look again.
const scriptPollEvery = 10 * time.Millisecond

// scriptEnvKeys are the variables, besides those Setup set, that a
// background command takes from the script's environment.
var scriptEnvKeys = []string{
	"LEASERUN_LEASE", "LEASERUN_TTL", "LEASERUN_RENEW", "LEASERUN_WAIT",
	"LEASERUN_WAIT_TIMEOUT", "LEASERUN_GRACE", "LEASERUN_STOP_SIGNAL",
	"LEASERUN_HELD_EXIT_CODE", "LEASERUN_LOG_FORMAT", "LEASERUN_LOG_LEVEL",
	"LEASERUN_CLOCK_SKEW",
}

func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                "testdata/script",
		Setup:              scriptSetup,
		Condition:          scriptCondition,
		RequireUniqueNames: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":   scriptExitcode,
			"start":      scriptStart,
			"waitexit":   scriptWaitexit,
			"waitout":    scriptWaitout,
			"signal":     scriptSignal,
			"waitfile":   scriptWaitfile,
			"proc":       scriptProcCmd,
			"waitstate":  scriptWaitstate,
			"json":       scriptJSON,
			"increasing": scriptIncreasing,
			"envfile":    scriptEnvfile,
			"oneslot":    scriptOneslot,
		},
	})
}

// scriptStateKey finds a script's *scriptState in its Values.
type scriptStateKey struct{}

// scriptState is what the commands of one script share: its background
// processes and the environment keys Setup set.
type scriptState struct {
	work    string
	envKeys []string
	bg      map[string]*scriptBgProc
}

// scriptBgProc is a background process.
type scriptBgProc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr string // files
	done           chan struct{}
	state          *os.ProcessState
}

var scriptMarks atomic.Int64

func scriptSetup(env *testscript.Env) error {
	env.Setenv("PATH", filepath.Dir(leaserunBin)+string(os.PathListSeparator)+env.Getenv("PATH"))
	leases := filepath.Join(env.WorkDir, "leases")
	if err := os.Mkdir(leases, 0o755); err != nil {
		return err
	}
	env.Setenv("LEASES", leases)
	// 8 digits, so no mark is a substring of another, and a number sleep
	// takes (over 10^6 seconds: it never ends by itself).
	env.Setenv("MARK", fmt.Sprintf("%05d%03d.25", os.Getpid()%100000, scriptMarks.Add(1)%1000))
	env.Setenv("UNSHARE_WHY", scriptUnshareWhy())
	st := &scriptState{work: env.WorkDir, bg: map[string]*scriptBgProc{}}
	for _, kv := range env.Vars {
		if k, _, ok := strings.Cut(kv, "="); ok {
			st.envKeys = append(st.envKeys, k)
		}
	}
	env.Values[scriptStateKey{}] = st
	env.Defer(st.cleanup)
	return nil
}

// cleanup kills what a script left running: its background processes, what
// they started in their process groups, and their children (the PID 1 of a
// namespace takes the rest of the namespace with it).
func (st *scriptState) cleanup() {
	for _, p := range st.bg {
		select {
		case <-p.done:
			continue
		default:
		}
		pid := p.cmd.Process.Pid
		for _, c := range scriptChildren(pid) {
			syscall.Kill(c, syscall.SIGKILL)
		}
		syscall.Kill(-pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(scriptPatience):
		}
	}
}

func scriptStateOf(ts *testscript.TestScript) *scriptState {
	return ts.Value(scriptStateKey{}).(*scriptState)
}

var scriptUnshareWhy = sync.OnceValue(func() string {
	out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput()
	if err == nil {
		return ""
	}
	return fmt.Sprintf("unshare --pid --fork --mount-proc true: %v: %s", err, bytes.TrimSpace(out))
})

func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "root":
		return os.Geteuid() == 0, nil
	case "unshare":
		return scriptUnshareWhy() == "", nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// scriptExitcode: exitcode N prog [args...]
func scriptExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N prog [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: bad status %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	var got string
	var ee *exec.ExitError
	switch {
	case err == nil:
		got = "0"
	case errors.As(err, &ee):
		got = scriptDescribe(ee.ProcessState)
	default:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != strconv.Itoa(want) {
		ts.Fatalf("%s: exit status %s, want %d", args[1], got, want)
	}
}

// scriptDescribe is a process's end: its exit status, or the name of the
// signal that killed it.
func scriptDescribe(ps *os.ProcessState) string {
	ws := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return unix.SignalName(ws.Signal())
	}
	return strconv.Itoa(ws.ExitStatus())
}

// scriptStart: start NAME prog [args...]
func scriptStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: start NAME prog [args...]")
	}
	st := scriptStateOf(ts)
	name := args[0]
	if _, ok := st.bg[name]; ok {
		ts.Fatalf("start: %s is already taken", name)
	}
	path, err := scriptLookPath(ts, args[1])
	ts.Check(err)
	dir := filepath.Join(st.work, ".bg")
	ts.Check(os.MkdirAll(dir, 0o755))
	p := &scriptBgProc{
		name:   name,
		stdout: filepath.Join(dir, name+".stdout"),
		stderr: filepath.Join(dir, name+".stderr"),
		done:   make(chan struct{}),
	}
	// Files, not pipes: a process left behind holding a pipe would keep
	// Wait from returning.
	stdout, err := os.Create(p.stdout)
	ts.Check(err)
	defer stdout.Close()
	stderr, err := os.Create(p.stderr)
	ts.Check(err)
	defer stderr.Close()
	cwd := ts.MkAbs(".")
	env := []string{"PWD=" + cwd}
	for _, k := range slices.Concat(st.envKeys, scriptEnvKeys) {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	p.cmd = &exec.Cmd{
		Path:        path,
		Args:        args[1:],
		Env:         env,
		Dir:         cwd,
		Stdout:      stdout,
		Stderr:      stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	ts.Check(p.cmd.Start())
	st.bg[name] = p
	go func() {
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	ts.Logf("started %s: pid %d", name, p.cmd.Process.Pid)
}

// scriptLookPath finds prog as exec would, on the script's PATH.
func scriptLookPath(ts *testscript.TestScript, prog string) (string, error) {
	if strings.Contains(prog, "/") {
		return ts.MkAbs(prog), nil
	}
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		if dir == "" {
			continue
		}
		path := filepath.Join(dir, prog)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s: not found on $PATH", prog)
}

func scriptBg(ts *testscript.TestScript, name string) *scriptBgProc {
	p, ok := scriptStateOf(ts).bg[name]
	if !ok {
		ts.Fatalf("no background process %q", name)
	}
	return p
}

// scriptWaitexit: waitexit NAME N|SIGNAME
func scriptWaitexit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitexit NAME N|SIGNAME")
	}
	p := scriptBg(ts, args[0])
	select {
	case <-p.done:
	case <-time.After(scriptPatience):
		ts.Fatalf("%s (pid %d) still running after %v", p.name, p.cmd.Process.Pid, scriptPatience)
	}
	out, errOut := ts.ReadFile(p.stdout), ts.ReadFile(p.stderr)
	fmt.Fprint(ts.Stdout(), out)
	fmt.Fprint(ts.Stderr(), errOut)
	want := args[1]
	if _, err := strconv.Atoi(want); err != nil {
		sig, err := parseScriptSignal(want)
		ts.Check(err)
		want = unix.SignalName(sig)
	}
	if got := scriptDescribe(p.state); got != want {
		ts.Fatalf("%s ended with %s, want %s\n[stdout]\n%s[stderr]\n%s", p.name, got, want, out, errOut)
	}
	delete(scriptStateOf(ts).bg, p.name)
}

// scriptWaitout: waitout NAME stdout|stderr REGEXP
func scriptWaitout(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 || (args[1] != "stdout" && args[1] != "stderr") {
		ts.Fatalf("usage: waitout NAME stdout|stderr REGEXP")
	}
	p := scriptBg(ts, args[0])
	re, err := regexp.Compile("(?m)" + args[2])
	ts.Check(err)
	file := p.stdout
	if args[1] == "stderr" {
		file = p.stderr
	}
	scriptPoll(ts, fmt.Sprintf("%s of %s to match %q", args[1], p.name, args[2]), func() (bool, string) {
		data, _ := os.ReadFile(file)
		return re.Match(data), fmt.Sprintf("%s so far:\n%s", args[1], data)
	})
}

// scriptPoll calls cond until it is true, and fails the script after
// scriptPatience, with what the last call said.
func scriptPoll(ts *testscript.TestScript, what string, cond func() (ok bool, last string)) {
	deadline := time.Now().Add(scriptPatience)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("gave up after %v waiting for %s; %s", scriptPatience, what, last)
		}
		time.Sleep(scriptPollEvery)
	}
}

func parseScriptSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("no signal %q", s)
}

// scriptSignal: signal [-child] NAME SIG
func scriptSignal(ts *testscript.TestScript, neg bool, args []string) {
	child := len(args) > 0 && args[0] == "-child"
	if child {
		args = args[1:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: signal [-child] NAME SIG")
	}
	p := scriptBg(ts, args[0])
	sig, err := parseScriptSignal(args[1])
	ts.Check(err)
	pid := p.cmd.Process.Pid
	if child {
		kids := scriptChildren(pid)
		if len(kids) != 1 {
			ts.Fatalf("%s (pid %d) has children %v, want exactly one", p.name, pid, kids)
		}
		pid = kids[0]
	}
	ts.Logf("kill -%s %d", unix.SignalName(sig), pid)
	ts.Check(syscall.Kill(pid, sig))
}

// scriptChildren are the processes whose parent is pid.
func scriptChildren(pid int) []int {
	var kids []int
	for _, p := range scriptProcs() {
		if p.PPID == pid {
			kids = append(kids, p.PID)
		}
	}
	return kids
}

type scriptProcInfo struct {
	procstat.Stat
	cmdline string
}

// scriptProcs lists the processes of /proc.
func scriptProcs() []scriptProcInfo {
	procs, _ := procstat.All()
	ps := make([]scriptProcInfo, len(procs))
	for i, p := range procs {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
		ps[i] = scriptProcInfo{p, strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))}
	}
	return ps
}

// scriptWaitfile: waitfile [-lines N] FILE...
func scriptWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	lines := 0
	if len(args) >= 2 && args[0] == "-lines" {
		n, err := strconv.Atoi(args[1])
		if err != nil {
			ts.Fatalf("waitfile: bad -lines %q", args[1])
		}
		lines, args = n, args[2:]
	}
	if neg || len(args) == 0 {
		ts.Fatalf("usage: waitfile [-lines N] FILE...")
	}
	for _, name := range args {
		file := ts.MkAbs(name)
		scriptPoll(ts, name, func() (bool, string) {
			data, err := os.ReadFile(file)
			if err != nil {
				return false, err.Error()
			}
			n := bytes.Count(data, []byte{'\n'})
			return n >= lines, fmt.Sprintf("it has %d lines, want %d:\n%s", n, lines, data)
		})
	}
}

// scriptProcCmd: [!] proc SUBSTRING
func scriptProcCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || args[0] == "" {
		ts.Fatalf("usage: [!] proc SUBSTRING")
	}
	self := os.Getpid()
	what := "a process running " + strconv.Quote(args[0])
	if neg {
		what = "no process running " + strconv.Quote(args[0])
	}
	scriptPoll(ts, what, func() (bool, string) {
		var found []string
		for _, p := range scriptProcs() {
			if p.PID != self && strings.Contains(p.cmdline, args[0]) {
				found = append(found, fmt.Sprintf("pid %d (state %c, parent %d): %s", p.PID, p.State, p.PPID, p.cmdline))
			}
		}
		return (len(found) > 0) != neg, "found: " + strings.Join(found, "; ")
	})
}

// scriptWaitstate: waitstate LEASE STATE
func scriptWaitstate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitstate LEASE STATE")
	}
	lease := ts.MkAbs(args[0])
	scriptPoll(ts, fmt.Sprintf("%s to be %s", args[0], args[1]), func() (bool, string) {
		out, err := exec.Command(leaserunBin, "status", "--lease", lease, "--format", "{{.State}}").CombinedOutput()
		got := strings.TrimSpace(string(out))
		return got == args[1], fmt.Sprintf("leaserun status: %s (%v)", got, err)
	})
}

// scriptJSON: [!] json FILE KEY[.KEY...] [REGEXP]
func scriptJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 || (neg && len(args) == 3) {
		ts.Fatalf("usage: json FILE KEY[.KEY...] [REGEXP] or ! json FILE KEY[.KEY...]")
	}
	data := ts.ReadFile(args[0])
	var v any
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("%s is not JSON: %v\n%s", args[0], err, data)
	}
	if dec.More() {
		ts.Fatalf("%s holds more than one JSON value:\n%s", args[0], data)
	}
	for _, k := range strings.Split(args[1], ".") {
		m, ok := v.(map[string]any)
		if ok {
			v, ok = m[k]
		}
		if !ok {
			if neg {
				return
			}
			ts.Fatalf("%s has no %s:\n%s", args[0], args[1], data)
		}
	}
	if neg {
		ts.Fatalf("%s has %s = %v, want none", args[0], args[1], v)
	}
	if len(args) == 3 {
		re, err := regexp.Compile(args[2])
		ts.Check(err)
		text := fmt.Sprint(v)
		if !re.MatchString(text) {
			ts.Fatalf("%s: %s = %q, want a match for %q", args[0], args[1], text, args[2])
		}
	}
}

// scriptIncreasing: increasing FILE...
func scriptIncreasing(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: increasing FILE FILE...")
	}
	var prev uint64
	for i, name := range args {
		text := strings.TrimSpace(ts.ReadFile(name))
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			ts.Fatalf("%s: %q is not a decimal number", name, text)
		}
		if i > 0 && n <= prev {
			ts.Fatalf("%s: %d is not greater than %d (%s)", name, n, prev, args[i-1])
		}
		prev = n
	}
}

// scriptEnvfile: envfile VAR FILE
func scriptEnvfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

// scriptOneslot: oneslot DURATION
func scriptOneslot(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: oneslot DURATION")
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d <= 0 {
		ts.Fatalf("oneslot: bad duration %q", args[0])
	}
	if left := time.Until(lease.SlotOf(time.Now(), d).Add(d)); left < 15*time.Second {
		ts.Logf("waiting %v for the next slot", left.Round(time.Millisecond))
		time.Sleep(left)
	}
}
