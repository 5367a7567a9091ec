//go:build linux

package integration

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/sshfsrig"
)

// TestSSHFSRaceNegativeCache: a live holder on one host, challengers on a
// host whose client caches failed lookups for a moment
// (sshfsrig.NegativeCache), and, on that host, something that looks up the
// lease's next version names before they exist (as Wait does before it
// takes, or any ls): the caching host then lists versions that it can't
// open for a moment. Such a stale view must make a challenger look again,
// never take the lease as free. A leaserun on the holder's host holds the
// lease for the whole run, renewing every 100ms (a new version each time),
// while one-shot and standby leaserun loops on the caching host try to take
// it for about 10s (on a slow machine, until they were refused 50 times).
// No two children may ever run at once, and the holder must not lose the
// lease it renews in time (should it lose it, it stands by to hold again,
// so that the race goes on).
func TestSSHFSRaceNegativeCache(t *testing.T) {
	rig := sshfsrig.StartHosts(t, "", sshfsrig.NegativeCache)
	holderPath := filepath.Join(rig.Mounts[0].Path, "neg.lease")
	cachingPath := filepath.Join(rig.Mounts[1].Path, "neg.lease")
	dir := t.TempDir()
	stopHolding := filepath.Join(dir, "stop")
	const (
		ttl   = 3 * time.Second
		renew = 100 * time.Millisecond
		dur   = 10 * time.Second
		// A race in which the challengers hardly tried proves nothing:
		// on a slow machine it goes on past dur until they were refused
		// minRefused times, or for maxDur.
		minRefused = 50
		maxDur     = 60 * time.Second
	)

	type run struct {
		id     string
		role   string // holder, oneshot or standby
		status int
		log    string
		proc   *e2eProc
	}
	var (
		mu      sync.Mutex
		runs    []run
		refused int
		wg      sync.WaitGroup
	)
	// loop runs leaserun again and again until done says stop; the first
	// run's process goes to first, if not nil.
	loop := func(role, path string, hold string, done func() bool, first chan<- *e2eProc, flags ...string) {
		wg.Go(func() {
			for i := 0; !done(); i++ {
				id := fmt.Sprintf("%s%d", role, i)
				log := filepath.Join(dir, id+".log")
				env := e2eChildEnv(log, e2eEnvHeartbeat+"=5ms", e2eEnvExit+"=0")
				if hold == "" {
					env = append(env, e2eEnvHold+"=60s", e2eEnvHoldUntil+"="+stopHolding)
				} else {
					env = append(env, e2eEnvHold+"="+hold)
				}
				p := e2eStartLeaserun(t, dir, id, nil, env,
					append([]string{"--lease", path, "--ttl", ttl.String(), "--renew", renew.String()}, flags...)...)
				if i == 0 && first != nil {
					first <- p
				}
				status := p.Wait(t, 90*time.Second)
				mu.Lock()
				runs = append(runs, run{id: id, role: role, status: status, log: log, proc: p})
				if role != "holder" && status == 75 {
					refused++
				}
				mu.Unlock()
			}
		})
	}
	stopped := func() bool { _, err := os.Stat(stopHolding); return err == nil }
	first := make(chan *e2eProc, 1)
	loop("holder", holderPath, "", stopped, first, "--wait")
	e2eWaitChildStart(t, 30*time.Second, filepath.Join(dir, "holder0.log"), <-first)

	// Look up the next few version names through the caching host, over
	// and over, so that each is in its cache of failed lookups when the
	// holder makes it.
	stopPriming := make(chan struct{})
	var primer sync.WaitGroup
	primer.Go(func() {
		vdir := cachingPath + ".d"
		for {
			select {
			case <-stopPriming:
				return
			default:
			}
			newest := uint64(0)
			names, _ := os.ReadDir(vdir)
			for _, e := range names {
				if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
					newest = max(newest, n)
				}
			}
			for n := newest + 1; n <= newest+3; n++ {
				os.Lstat(filepath.Join(vdir, strconv.FormatUint(n, 10)))
			}
			time.Sleep(time.Millisecond)
		}
	})

	begun := time.Now()
	over := func() bool {
		mu.Lock()
		defer mu.Unlock()
		took := time.Since(begun)
		return took >= dur && refused >= minRefused || took >= maxDur
	}
	loop("oneshot", cachingPath, "10ms", over, nil)
	loop("oneshotb", cachingPath, "10ms", over, nil)
	loop("standby", cachingPath, "10ms", over, nil, "--wait", "--wait-timeout", "500ms")
	for !over() {
		time.Sleep(50 * time.Millisecond)
	}
	close(stopPriming)
	primer.Wait()
	if err := os.WriteFile(stopHolding, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	var ivs []e2eInterval
	count := map[string]int{}
	for _, r := range runs {
		count[fmt.Sprintf("%s:%d", strings.TrimRight(r.role, "b"), r.status)]++
		c, err := e2eReadChildLog(r.log)
		if r.status == 75 {
			if !os.IsNotExist(err) {
				t.Errorf("%s: leaserun exited 75 but its child ran (log: %v)", r.id, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: leaserun exited %d but its child left no log: %v; stderr:\n%s", r.id, r.status, err, r.proc.Stderr())
			continue
		}
		if r.status != 0 {
			t.Errorf("%s: leaserun exited %d; stderr:\n%s", r.id, r.status, r.proc.Stderr())
		}
		ivs = append(ivs, e2eInterval{ID: r.id, Start: c.Start.Mono, End: c.Last().Mono, Epoch: c.Epoch})
	}
	keys := slices.Sorted(maps.Keys(count))
	var summary []string
	for _, k := range keys {
		summary = append(summary, fmt.Sprintf("%s %d", k, count[k]))
	}
	t.Logf("runs by role:status: %s", strings.Join(summary, ", "))
	if err := e2eCheckNoOverlap(ivs); err != nil {
		t.Errorf("children ran at the same time:\n%v", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	if n := count["oneshot:75"] + count["standby:75"]; n < minRefused {
		t.Errorf("the challengers were refused only %d times", n)
	}
}
