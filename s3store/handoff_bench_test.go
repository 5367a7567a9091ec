package s3store_test

// BenchmarkHandOff measures the hand-off to a waiting standby: from the
// return of the holder's Release to the return of the standby's WaitStore,
// against gofakes3 in a process of its own (internal/fakes3/cmd/fakes3),
// so that every request crosses loopback HTTP between processes. S3 has
// no watch: the standby reads the lease every poll interval (by default
// ttl/10, between 10ms and 1s), so the hand-off is bounded by that
// interval plus a GET and the PUT that takes the lease.
//
//	go test -run '^$' -bench HandOff -benchtime=100x -count=1 ./s3store/

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// fakes3Dir holds the fakes3 executable once a benchmark has built it;
// TestMain removes it.
var fakes3Dir string

var buildFakes3 = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "leaserun-fakes3-")
	if err != nil {
		return "", err
	}
	fakes3Dir = dir
	bin := filepath.Join(dir, "fakes3")
	build := exec.Command("go", "build", "-o", bin, "github.com/leaserun/leaserun/internal/fakes3/cmd/fakes3")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building fakes3: %v\n%s", err, out)
	}
	return bin, nil
})

// startServerProcess starts a fake S3 in a process of its own, with the
// bucket bucket, and returns its endpoint; a cleanup ends it.
func startServerProcess(b *testing.B) string {
	b.Helper()
	bin, err := buildFakes3()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-bucket", bucket)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("fake S3: %v", err)
	}
	return strings.TrimSpace(line)
}

func BenchmarkHandOff(b *testing.B) {
	for _, ttl := range []time.Duration{15 * time.Second, 2 * time.Second} {
		b.Run(fmt.Sprintf("ttl=%s", ttl), func(b *testing.B) { benchHandOff(b, ttl) })
	}
}

// poll is WaitStore's default poll interval for ttl with no watch.
func poll(ttl time.Duration) time.Duration {
	return min(max(ttl/10, 10*time.Millisecond), time.Second)
}

// benchHandOff hands the lease back and forth between two stores (two
// clients, as two hosts would have): in each iteration one holds, the
// other waits in WaitStore, and the holder releases at a random point of
// the standby's poll cycle, so that the hand-offs sample it evenly.
func benchHandOff(b *testing.B, ttl time.Duration) {
	endpoint := startServerProcess(b)
	loc := "s3://" + bucket + "/" + newKey("handoff") + "?endpoint=" + endpoint
	stores := [2]lease.Store{open(b, loc), open(b, loc)}
	held, err := lease.AcquireStore(stores[0], ttl)
	if err != nil {
		b.Fatal(err)
	}
	type taken struct {
		l   *lease.Lease
		at  time.Time
		err error
	}
	var lat []time.Duration
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		standby := stores[(i+1)%2]
		ch := make(chan taken, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*ttl)
			defer cancel()
			l, err := lease.WaitStore(ctx, standby, ttl)
			ch <- taken{l, time.Now(), err}
		}()
		// The standby's first read comes within milliseconds; then it
		// reads once a poll interval.
		time.Sleep(5*time.Millisecond + rand.N(poll(ttl)))
		b.StartTimer()
		if err := held.Release(); err != nil {
			b.Fatal(err)
		}
		released := time.Now()
		t := <-ch
		if t.err != nil {
			b.Fatal(t.err)
		}
		d := t.at.Sub(released)
		lat = append(lat, d)
		total += d
		held = t.l
	}
	b.StopTimer()
	held.Release()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e6
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(len(lat))/1e6, "ms/op")
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(poll(ttl).Nanoseconds())/1e6, "poll-ms")
	b.ReportMetric(0, "ns/op")
}
