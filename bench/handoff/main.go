//go:build linux

// Command handoff measures what leaserun costs around its command, beside
// flock(1) doing the same job with a kernel lock:
//
//		handoff [flags] handoff|takeover|idle|standbys|leases|all
//		handoff child        (the helper command the benchmarks run under the lock)
//
//	  - handoff: a holder's child exits; a standby already waiting (leaserun
//	    --wait, or flock blocked in flock(2)) starts its child. The gap between
//	    the two CLOCK_MONOTONIC stamps the children print, over -rounds rounds,
//	    leaserun and flock rounds interleaved.
//	  - takeover: SIGKILL the holding leaserun (--ttl -ttl); the time until the
//	    waiting standby's child starts, as a fraction of the TTL. Beside it,
//	    flock -o (the lock closed in the child): SIGKILL the holding flock.
//	  - idle: one leaserun holding a lease at the default TTL with sleep as its
//	    child: RSS, PSS and CPU over -interval (and flock(1) beside it).
//	  - standbys: -standbys leaserun --wait standbys on one lease: their total
//	    CPU over -interval, then hand-offs from the holder's child's exit to the
//	    next child's start (and as many flock waiters beside them).
//	  - leases: -leases leaserun processes each holding a lease of its own:
//	    RSS, PSS and CPU per process.
//
// Each result is also printed as a line "RESULT name value unit" for
// bench/run.sh. Durations: -interval (env HANDOFF_INTERVAL, default 60s),
// -rounds (HANDOFF_ROUNDS, 100).
//
// The child helper stamps its start right away, waits for SIGUSR1 (sent to
// it directly, not through leaserun), stamps its exit and exits 0. Both
// stamps go to its standard output, which leaserun and flock hand down from
// this program: one pipe shared by all of them (each line is one write
// shorter than PIPE_BUF, so lines never interleave).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leaserun/leaserun/internal/procstat"
)

// mono is CLOCK_MONOTONIC in nanoseconds: the same clock in every process.
func mono() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func child() {
	start := mono()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1, syscall.SIGTERM)
	pid := os.Getpid()
	os.Stdout.WriteString(fmt.Sprintf("start %d %d\n", pid, start))
	<-usr1
	os.Stdout.WriteString(fmt.Sprintf("exit %d %d\n", pid, mono()))
	os.Exit(0)
}

// Flags.
var (
	leaserun = flag.String("leaserun", "leaserun", "the leaserun binary")
	flockBin = flag.String("flock", "flock", "flock(1) from util-linux")
	dir      = flag.String("dir", "/var/tmp", "directory for the lease files")
	rounds   = flag.Int("rounds", envInt("HANDOFF_ROUNDS", 100), "hand-off rounds (each of leaserun and flock)")
	interval = flag.Duration("interval", envDur("HANDOFF_INTERVAL", 60*time.Second), "idle measuring interval")
	ttl      = flag.Duration("ttl", envDur("HANDOFF_TTL", 2*time.Second), "TTL for takeover")
	takes    = flag.Int("takeovers", envInt("HANDOFF_TAKEOVERS", 5), "takeover rounds")
	nStandby = flag.Int("standbys", envInt("HANDOFF_STANDBYS", 100), "standbys on one lease")
	sbRounds = flag.Int("standby-rounds", envInt("HANDOFF_STANDBY_ROUNDS", 20), "hand-off rounds among the standbys")
	nLeases  = flag.Int("leases", envInt("HANDOFF_LEASES", 200), "leaserun processes, each on a lease of its own")
	compare  = flag.String("compare", "", "another leaserun binary to time hand-offs of, interleaved (A/B of a change)")
	settle   = flag.Duration("settle", 20*time.Millisecond, "pause after a standby is seen waiting, before the hand-off")
	self     string
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "child" {
		child()
		return
	}
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: handoff [flags] handoff|takeover|idle|standbys|leases|all")
		os.Exit(64)
	}
	var err error
	if self, err = os.Executable(); err != nil {
		fatal(err)
	}
	if *leaserun, err = exec.LookPath(*leaserun); err != nil {
		fatal(err)
	}
	if *flockBin, err = exec.LookPath(*flockBin); err != nil {
		fatal(err)
	}
	work, err := os.MkdirTemp(*dir, "handoff-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(work)
	*dir = work
	startReader()
	defer killAll()
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		<-c
		killAll()
		os.RemoveAll(work)
		os.Exit(130)
	}()

	fmt.Printf("# load average: %s", must(os.ReadFile("/proc/loadavg")))
	which := flag.Arg(0)
	run := func(name string, f func()) {
		if which == name || which == "all" {
			f()
		}
	}
	run("handoff", benchHandoff)
	run("takeover", benchTakeover)
	run("idle", benchIdle)
	run("standbys", benchStandbys)
	run("leases", benchLeases)
	fmt.Printf("# load average: %s", must(os.ReadFile("/proc/loadavg")))
}

func fatal(err error) {
	killAll()
	fmt.Fprintln(os.Stderr, "handoff:", err)
	os.Exit(1)
}

func must[T any](v T, err error) T {
	if err != nil {
		fatal(err)
	}
	return v
}

func result(name string, value float64, unit string) {
	fmt.Printf("RESULT %s %.6g %s\n", name, value, unit)
}

// ---- processes and the children's stamps

var (
	procsMu sync.Mutex
	procs   = map[int]*exec.Cmd{}
	outW    *os.File // the children's shared stdout

	stampsMu sync.Mutex
	stampsC  = sync.NewCond(&stampsMu)
	starts   []stamp // in arrival order
	exits    = map[int]int64{}
)

type stamp struct {
	pid int
	t   int64
}

func startReader() {
	r, w, err := os.Pipe()
	if err != nil {
		fatal(err)
	}
	outW = w
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue
			}
			pid, _ := strconv.Atoi(f[1])
			t, _ := strconv.ParseInt(f[2], 10, 64)
			stampsMu.Lock()
			switch f[0] {
			case "start":
				starts = append(starts, stamp{pid, t})
			case "exit":
				exits[pid] = t
			}
			stampsC.Broadcast()
			stampsMu.Unlock()
		}
	}()
}

// nextStart waits for the start stamp number i (0-based, in arrival order).
func nextStart(i int, timeout time.Duration) (stamp, error) {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, func() { stampsMu.Lock(); stampsC.Broadcast(); stampsMu.Unlock() })
	defer t.Stop()
	stampsMu.Lock()
	defer stampsMu.Unlock()
	for len(starts) <= i {
		if time.Now().After(deadline) {
			return stamp{}, fmt.Errorf("no child started within %v", timeout)
		}
		stampsC.Wait()
	}
	return starts[i], nil
}

func startCount() int {
	stampsMu.Lock()
	defer stampsMu.Unlock()
	return len(starts)
}

func exitOf(pid int, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, func() { stampsMu.Lock(); stampsC.Broadcast(); stampsMu.Unlock() })
	defer t.Stop()
	stampsMu.Lock()
	defer stampsMu.Unlock()
	for {
		if t, ok := exits[pid]; ok {
			return t, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("child %d did not stamp its exit", pid)
		}
		stampsC.Wait()
	}
}

// spawn starts a process whose stdout is the shared pipe; its stderr is
// discarded (leaserun logs there).
func spawn(args ...string) *exec.Cmd {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout = outW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	procsMu.Lock()
	procs[cmd.Process.Pid] = cmd
	procsMu.Unlock()
	go func() {
		cmd.Wait()
		procsMu.Lock()
		delete(procs, cmd.Process.Pid)
		procsMu.Unlock()
	}()
	return cmd
}

func killAll() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for pid := range procs {
		syscall.Kill(-pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func killWait(cmds []*exec.Cmd) {
	for _, c := range cmds {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		syscall.Kill(c.Process.Pid, syscall.SIGKILL)
	}
	for _, c := range cmds {
		waitGone(c.Process.Pid, 10*time.Second)
	}
}

func waitGone(pid int, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		procsMu.Lock()
		_, alive := procs[pid]
		procsMu.Unlock()
		if !alive {
			return
		}
	}
}

// leaserunCmd is a leaserun command line running the child helper.
func leaserunCmd(lease string, extra ...string) []string {
	args := append([]string{*leaserun, "--lease", lease}, extra...)
	return append(args, "--", self, "child")
}

func flockCmd(lock string, extra ...string) []string {
	args := append([]string{*flockBin}, extra...)
	return append(args, lock, self, "child")
}

// watching reports whether pid has an inotify watch: a leaserun standby has
// set up its wait.
func watching(pid int) bool {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fdinfo", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err == nil && strings.Contains(string(b), "inotify wd:") {
			return true
		}
	}
	return false
}

// blockedOnFlock reports whether pid waits for a flock: /proc/locks lists
// waiters as "N: -> FLOCK ADVISORY WRITE PID ...".
func blockedOnFlock(pid int) bool {
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "->" && f[2] == "FLOCK" && f[5] == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}

func waitUntil(what string, timeout time.Duration, ok func() bool) {
	for deadline := time.Now().Add(timeout); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			fatal(fmt.Errorf("timed out waiting for %s", what))
		}
	}
}

// ---- statistics

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	// nearest rank
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func summary(name string, ms []float64) {
	fmt.Printf("%-28s n=%-4d min %7.3f  median %7.3f  p90 %7.3f  p99 %7.3f  max %7.3f ms\n",
		name, len(ms), quantile(ms, 0), quantile(ms, 0.5), quantile(ms, 0.9), quantile(ms, 0.99), quantile(ms, 1))
	result(name+".min", quantile(ms, 0), "ms")
	result(name+".median", quantile(ms, 0.5), "ms")
	result(name+".p99", quantile(ms, 0.99), "ms")
}

// ---- /proc

const clkTck = 100 // sysconf(_SC_CLK_TCK) on Linux

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid int) int64 {
	s, _ := procstat.Read(pid)
	return int64(s.UTime + s.STime)
}

// cpuNanos is the time pid's threads spent on a CPU, from schedstat: the
// same as utime+stime, at nanosecond resolution.
func cpuNanos(pid int) int64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += n
		}
	}
	return sum
}

// memKiB returns VmRSS (from status) and Pss (from smaps_rollup) in KiB.
func memKiB(pid int) (rss, pss float64) {
	field := func(file, key string) float64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		if err != nil {
			return math.NaN()
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, key) {
				f := strings.Fields(line[len(key):])
				if len(f) > 0 {
					v, _ := strconv.ParseFloat(f[0], 64)
					return v
				}
			}
		}
		return math.NaN()
	}
	return field("status", "VmRSS:"), field("smaps_rollup", "Pss:")
}

// idleCost measures pids over *interval: their summed CPU as a percentage
// of one core (from utime+stime, and from schedstat), and their mean RSS and
// PSS.
type cost struct {
	cpuPct, cpuPctSched float64 // of one core, all pids together
	rssKiB, pssKiB      float64 // mean per pid
	ticks               int64
}

func measure(pids []int, d time.Duration) cost {
	t0, n0 := make([]int64, len(pids)), make([]int64, len(pids))
	for i, p := range pids {
		t0[i], n0[i] = cpuTicks(p), cpuNanos(p)
	}
	start := time.Now()
	time.Sleep(d)
	el := time.Since(start).Seconds()
	var c cost
	var nanos int64
	for i, p := range pids {
		c.ticks += cpuTicks(p) - t0[i]
		nanos += cpuNanos(p) - n0[i]
		rss, pss := memKiB(p)
		c.rssKiB += rss
		c.pssKiB += pss
	}
	c.cpuPct = 100 * float64(c.ticks) / clkTck / el
	c.cpuPctSched = 100 * float64(nanos) / 1e9 / el
	c.rssKiB /= float64(len(pids))
	c.pssKiB /= float64(len(pids))
	return c
}

// ---- (a) hand-off

// chain is a lock with one holder and one standby at a time.
type chain struct {
	name    string
	lock    string
	cmd     func(lock string) []string
	waiting func(pid int) bool
	holder  stamp // the running child
	gaps    []float64
}

func (c *chain) start() {
	n := startCount()
	spawn(c.cmd(c.lock)...)
	c.holder = must(nextStart(n, 10*time.Second))
}

// round starts a standby, waits until it waits, makes the holder's child
// exit and times the standby's child's start.
func (c *chain) round() {
	sb := spawn(c.cmd(c.lock)...)
	waitUntil(c.name+" standby waiting", 10*time.Second, func() bool { return c.waiting(sb.Process.Pid) })
	time.Sleep(*settle)
	n := startCount()
	syscall.Kill(c.holder.pid, syscall.SIGUSR1)
	next, err := nextStart(n, 30*time.Second)
	if err != nil {
		fatal(fmt.Errorf("%s: %w", c.name, err))
	}
	exit := must(exitOf(c.holder.pid, 5*time.Second))
	c.gaps = append(c.gaps, float64(next.t-exit)/1e6)
	c.holder = next
}

func (c *chain) stop() {
	syscall.Kill(c.holder.pid, syscall.SIGUSR1)
	time.Sleep(50 * time.Millisecond)
}

func benchHandoff() {
	fmt.Printf("== hand-off: holder's child exits -> waiting standby's child starts (%d rounds each, interleaved; %s)\n",
		*rounds, fsInfo(*dir))
	lr := &chain{name: "handoff.leaserun", lock: filepath.Join(*dir, "handoff.lease"),
		cmd:     func(l string) []string { return leaserunCmd(l, "--wait") },
		waiting: watching}
	fl := &chain{name: "handoff.flock", lock: filepath.Join(*dir, "handoff.flock"),
		cmd:     func(l string) []string { return flockCmd(l) },
		waiting: blockedOnFlock}
	chains := []*chain{lr, fl}
	if *compare != "" {
		bin := must(exec.LookPath(*compare))
		chains = append(chains, &chain{name: "handoff.compare", lock: filepath.Join(*dir, "compare.lease"),
			cmd: func(l string) []string {
				args := leaserunCmd(l, "--wait")
				args[0] = bin
				return args
			},
			waiting: watching})
	}
	for _, c := range chains {
		c.start()
	}
	for i := 0; i < *rounds; i++ {
		for j := range chains {
			chains[(i+j)%len(chains)].round()
		}
	}
	for _, c := range chains {
		c.stop()
		summary(c.name, c.gaps)
	}
	result("handoff.ratio", quantile(lr.gaps, 0.5)/quantile(fl.gaps, 0.5), "x")
}

// ---- (b) crash takeover

func benchTakeover() {
	fmt.Printf("== crash takeover: SIGKILL the holder -> standby's child starts (ttl %v, %d rounds; %s)\n",
		*ttl, *takes, fsInfo(*dir))
	var fracs, ms, flockMs []float64
	lease := filepath.Join(*dir, "takeover.lease")
	lock := filepath.Join(*dir, "takeover.flock")
	for i := 0; i < *takes; i++ {
		// leaserun
		n := startCount()
		h := spawn(leaserunCmd(lease, "--wait", "--ttl", ttl.String())...)
		hc := must(nextStart(n, 10*time.Second))
		sb := spawn(leaserunCmd(lease, "--wait", "--ttl", ttl.String())...)
		waitUntil("takeover standby waiting", 10*time.Second, func() bool { return watching(sb.Process.Pid) })
		// Kill at a varying point of the renewal cycle (renew = ttl/3).
		time.Sleep(*settle + time.Duration(i)*(*ttl/3)/time.Duration(max(*takes, 1)))
		n = startCount()
		t0 := mono()
		syscall.Kill(h.Process.Pid, syscall.SIGKILL)
		next, err := nextStart(n, 3**ttl+10*time.Second)
		if err != nil {
			fatal(fmt.Errorf("takeover: %w", err))
		}
		if next.pid == hc.pid {
			fatal(errors.New("takeover: the killed holder's child started again?"))
		}
		d := float64(next.t - t0)
		ms = append(ms, d/1e6)
		fracs = append(fracs, d/float64(*ttl))
		syscall.Kill(next.pid, syscall.SIGUSR1)
		waitGone(sb.Process.Pid, 10*time.Second)

		// flock -o: the lock is not inherited by the child, so killing
		// flock frees it.
		n = startCount()
		fh := spawn(flockCmd(lock, "-o")...)
		fc := must(nextStart(n, 10*time.Second))
		fs := spawn(flockCmd(lock, "-o")...)
		waitUntil("flock standby waiting", 10*time.Second, func() bool { return blockedOnFlock(fs.Process.Pid) })
		time.Sleep(*settle)
		n = startCount()
		t0 = mono()
		syscall.Kill(fh.Process.Pid, syscall.SIGKILL)
		next = must(nextStart(n, 10*time.Second))
		flockMs = append(flockMs, float64(next.t-t0)/1e6)
		syscall.Kill(fc.pid, syscall.SIGUSR1) // orphaned: flock has no parent-death signal
		syscall.Kill(next.pid, syscall.SIGUSR1)
		waitGone(fs.Process.Pid, 10*time.Second)
	}
	summary("takeover.leaserun", ms)
	fmt.Printf("%-28s as a fraction of the ttl: median %.3f  max %.3f\n", "", quantile(fracs, 0.5), quantile(fracs, 1))
	result("takeover.leaserun.frac.median", quantile(fracs, 0.5), "ttl")
	result("takeover.leaserun.frac.max", quantile(fracs, 1), "ttl")
	summary("takeover.flock", flockMs)
}

// ---- (c) idle holder

func benchIdle() {
	fmt.Printf("== idle holder (default ttl, child sleep) over %v\n", *interval)
	lr := spawn(*leaserun, "--lease", filepath.Join(*dir, "idle.lease"), "--", "sleep", "100000")
	fl := spawn(*flockBin, filepath.Join(*dir, "idle.flock"), "sleep", "100000")
	time.Sleep(time.Second) // past start-up
	pids := []int{lr.Process.Pid, fl.Process.Pid}
	t0 := []int64{cpuTicks(pids[0]), cpuTicks(pids[1])}
	n0 := []int64{cpuNanos(pids[0]), cpuNanos(pids[1])}
	start := time.Now()
	time.Sleep(*interval)
	el := time.Since(start).Seconds()
	for i, name := range []string{"idle.leaserun", "idle.flock"} {
		p := pids[i]
		rss, pss := memKiB(p)
		ticks := cpuTicks(p) - t0[i]
		pct := 100 * float64(ticks) / clkTck / el
		pctNs := 100 * float64(cpuNanos(p)-n0[i]) / 1e9 / el
		fmt.Printf("%-28s RSS %6.2f MiB  PSS %6.2f MiB  CPU %.4f%% (utime+stime: %d ticks; schedstat %.4f%%)\n",
			name, rss/1024, pss/1024, pct, ticks, pctNs)
		result(name+".rss", rss/1024, "MiB")
		result(name+".pss", pss/1024, "MiB")
		result(name+".cpu", pct, "%")
		result(name+".cpu_sched", pctNs, "%")
	}
	killWait([]*exec.Cmd{lr, fl})
}

// ---- (d) many standbys

func benchStandbys() {
	n := *nStandby
	fmt.Printf("== %d standbys on one lease: idle CPU over %v, then %d hand-offs (%s)\n", n, *interval, *sbRounds, fsInfo(*dir))
	type side struct {
		name    string
		lock    string
		cmd     func(string) []string
		waiting func(int) bool
	}
	sides := []side{
		{"standbys.leaserun", filepath.Join(*dir, "standbys.lease"),
			func(l string) []string { return leaserunCmd(l, "--wait") }, watching},
		{"standbys.flock", filepath.Join(*dir, "standbys.flock"),
			func(l string) []string { return flockCmd(l) }, blockedOnFlock},
	}
	for _, s := range sides {
		c := startCount()
		spawn(s.cmd(s.lock)...)
		holder := must(nextStart(c, 10*time.Second))
		var sbs []*exec.Cmd
		for range n {
			sbs = append(sbs, spawn(s.cmd(s.lock)...))
		}
		for _, sb := range sbs {
			waitUntil(s.name+" waiting", 60*time.Second, func() bool { return s.waiting(sb.Process.Pid) })
		}
		time.Sleep(time.Second) // past start-up
		var pids []int
		for _, sb := range sbs {
			pids = append(pids, sb.Process.Pid)
		}
		c0 := measure(pids, *interval)
		fmt.Printf("%-28s total CPU %.4f%% of one core (%d ticks; schedstat %.4f%%), RSS %.2f MiB PSS %.2f MiB each\n",
			s.name+".idle", c0.cpuPct, c0.ticks, c0.cpuPctSched, c0.rssKiB/1024, c0.pssKiB/1024)
		result(s.name+".idle_cpu", c0.cpuPct, "%")
		result(s.name+".idle_cpu_sched", c0.cpuPctSched, "%")

		var gaps []float64
		var handoffCPU int64 // ns, of all the standbys, over the hand-offs
		cpuOf := func(pids []int) (sum int64) {
			for _, p := range pids {
				sum += cpuNanos(p)
			}
			return sum
		}
		for r := 0; r < *sbRounds; r++ {
			// Keep n standbys: replace the one that takes over.
			if r > 0 {
				sb := spawn(s.cmd(s.lock)...)
				waitUntil(fmt.Sprintf("%s standby %d waiting", s.name, sb.Process.Pid), 60*time.Second, func() bool { return s.waiting(sb.Process.Pid) })
				pids = append(pids, sb.Process.Pid)
				time.Sleep(*settle)
			}
			c := startCount()
			before := cpuOf(pids)
			syscall.Kill(holder.pid, syscall.SIGUSR1)
			next, err := nextStart(c, 30*time.Second)
			if err != nil {
				fatal(fmt.Errorf("%s: %w", s.name, err))
			}
			exit := must(exitOf(holder.pid, 5*time.Second))
			gaps = append(gaps, float64(next.t-exit)/1e6)
			holder = next
			time.Sleep(50 * time.Millisecond) // let the losers settle back
			handoffCPU += cpuOf(pids) - before
		}
		summary(s.name+".handoff", gaps)
		perHandoff := max(0, float64(handoffCPU)/1e6/float64(max(*sbRounds, 1))) // a standby that died (flock exits with its child) drops out
		fmt.Printf("%-28s CPU of all the standbys per hand-off: %.2f ms (%.3f ms each)\n", "", perHandoff, perHandoff/float64(n))
		result(s.name+".handoff_cpu", perHandoff, "ms")
		killAll()
		time.Sleep(200 * time.Millisecond)
	}
}

// ---- (e) many leases

func benchLeases() {
	n := *nLeases
	fmt.Printf("== %d leaserun processes, each holding its own lease (default ttl, child sleep), over %v\n", n, *interval)
	var cmds []*exec.Cmd
	var pids []int
	for i := range n {
		c := spawn(*leaserun, "--lease", filepath.Join(*dir, fmt.Sprintf("many-%d.lease", i)), "--", "sleep", "100000")
		cmds = append(cmds, c)
		pids = append(pids, c.Process.Pid)
	}
	one := spawn(*leaserun, "--lease", filepath.Join(*dir, "one.lease"), "--", "sleep", "100000")
	time.Sleep(2 * time.Second) // past start-up
	var c, c1 cost
	var wg sync.WaitGroup
	wg.Go(func() { c = measure(pids, *interval) })
	wg.Go(func() { c1 = measure([]int{one.Process.Pid}, *interval) })
	wg.Wait()
	per := c.cpuPct / float64(n)
	fmt.Printf("%-28s per process: RSS %.2f MiB  PSS %.2f MiB  CPU %.4f%% (all %d: %.3f%%, %d ticks; schedstat %.4f%% each)\n",
		"leases.many", c.rssKiB/1024, c.pssKiB/1024, per, n, c.cpuPct, c.ticks, c.cpuPctSched/float64(n))
	fmt.Printf("%-28s alone beside them: RSS %.2f MiB  PSS %.2f MiB  CPU %.4f%% (schedstat %.4f%%)\n",
		"leases.one", c1.rssKiB/1024, c1.pssKiB/1024, c1.cpuPct, c1.cpuPctSched)
	result("leases.many.rss", c.rssKiB/1024, "MiB")
	result("leases.many.pss", c.pssKiB/1024, "MiB")
	result("leases.many.cpu", per, "%")
	result("leases.many.cpu_sched", c.cpuPctSched/float64(n), "%")
	result("leases.one.rss", c1.rssKiB/1024, "MiB")
	result("leases.one.cpu_sched", c1.cpuPctSched, "%")
	killWait(append(cmds, one))
}

// fsInfo names the filesystem of path.
func fsInfo(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return path
	}
	names := map[int64]string{0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs",
		0x6969: "nfs", 0x65735546: "fuse"}
	name, ok := names[int64(st.Type)]
	if !ok {
		name = fmt.Sprintf("fs 0x%x", st.Type)
	}
	return path + " on " + name
}
