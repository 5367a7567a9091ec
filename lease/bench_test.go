package lease_test

// Benchmarks of the lease against a physical floor measured in the same run.
//
// Every benchmark works in a fresh directory under $LEASE_BENCH_DIR, or under
// b.TempDir() when it is unset. b.TempDir() lives in $TMPDIR or /tmp; on the
// machine these were written on /tmp is NOT tmpfs: it is the root ext4
// filesystem (`df -T /tmp` says ext4 on /dev/vda, `stat -f /tmp` says
// ext2/ext3), and so are /work and /var/tmp; /dev/shm is tmpfs. So:
//
//	LEASE_BENCH_DIR=/dev/shm  go test -run '^$' -bench . -benchtime=2000x -count=3 ./lease/  # tmpfs
//	LEASE_BENCH_DIR=/var/tmp  go test -run '^$' -bench . -benchtime=2000x -count=3 ./lease/  # ext4
//
// bench/lease.sh runs both and prints the ratios to the floor.
//
// The floor is what the least atomic replace of a record-sized file costs in
// that directory through package os: create, write, close, rename
// (BenchmarkFloor), plus fsync of the file and of the directory
// (BenchmarkFloorFsync). Targets: Renew <= 1.5x Floor; Acquire+Release <=
// 3x Floor + one fsync, where one fsync = FloorFsync - Floor.
//
import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// benchDir returns an empty directory for one benchmark: under
// $LEASE_BENCH_DIR if set, else b.TempDir(). It is removed afterwards.
func benchDir(b *testing.B) string {
	b.Helper()
	root := os.Getenv("LEASE_BENCH_DIR")
	if root == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(root, "leasebench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// recordBytes returns the bytes of a real lease record (as Acquire writes
// it), so that the floor writes exactly as much as the lease does.
func recordBytes(b *testing.B, dir string) []byte {
	b.Helper()
	path := filepath.Join(dir, "sample")
	l, err := lease.Acquire(path, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Release(); err != nil {
		b.Fatal(err)
	}
	if err := os.RemoveAll(path + ".d"); err != nil {
		b.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		b.Fatal(err)
	}
	return data
}

// floorReplace is the floor: the least an atomic replace of target costs, made
// the way the lease makes it (exclusive create of a fresh temp name in the
// same directory, write, close, rename over the target). With sync it also
// fsyncs the file before the rename and the directory after it, which is
// what makes the replace durable.
func floorReplace(dir, tmp, target string, data []byte, sync bool) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	// Windows cannot open a directory for flushing (the lease does not sync
	// directories there either).
	if sync && runtime.GOOS != "windows" {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		err = d.Sync()
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return nil
}

func benchFloor(b *testing.B, sync bool) {
	benchReplace(b, func(dir, tmp, target string, data []byte) error {
		return floorReplace(dir, tmp, target, data, sync)
	})
}

// benchReplace times replace, an atomic replace of the file "lease" in the
// benchmark directory by a new temp file tmp holding a record.
func benchReplace(b *testing.B, replace func(dir, tmp, target string, data []byte) error) {
	dir := benchDir(b)
	data := recordBytes(b, dir)
	target := filepath.Join(dir, "lease")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tmp := filepath.Join(dir, "tmp-"+strconv.Itoa(i))
		if err := replace(dir, tmp, target, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloor: create + write + close + rename of a record-sized file.
func BenchmarkFloor(b *testing.B) { benchFloor(b, false) }

// BenchmarkFloorFsync: BenchmarkFloor plus fsync of the file and of the
// directory.
func BenchmarkFloorFsync(b *testing.B) { benchFloor(b, true) }

// BenchmarkAcquireRelease: Acquire then Release of one path, b.N times.
// Each Acquire finds the previous holder's released record.
func BenchmarkAcquireRelease(b *testing.B) {
	path := filepath.Join(benchDir(b), "lease")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := lease.Acquire(path, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenew: one Acquire, then b.N Renews.
func BenchmarkRenew(b *testing.B) {
	path := filepath.Join(benchDir(b), "lease")
	l, err := lease.Acquire(path, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Renew(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := l.Release(); err != nil {
		b.Fatal(err)
	}
}

// Contended benchmark: the test binary re-executes itself as worker
// processes that run TestContendedWorker, which does nothing unless
// workerEnv is set.
const (
	contendedWorkers = 8

	workerEnv         = "LEASE_BENCH_WORKER" // "1" in a worker
	workerPathEnv     = "LEASE_BENCH_WORKER_PATH"
	workerQuotaEnv    = "LEASE_BENCH_WORKER_QUOTA"    // successful acquisitions to make
	workerAttemptsEnv = "LEASE_BENCH_WORKER_ATTEMPTS" // at most this many Acquire calls
	workerDeadlineEnv = "LEASE_BENCH_WORKER_DEADLINE" // unix ns; stop at this instant

	// workerTimeout bounds a worker's whole life, so that none outlives a
	// benchmark that failed or was killed.
	workerTimeout = 2 * time.Minute

	workerResult = "leasebench-result"
)

// TestContendedWorker is the worker entry of BenchmarkContendedAcquire; it is
// a no-op in normal runs. A worker says "ready", waits for a line on stdin,
// then loops Acquire (and Release on success) until it made its quota of
// acquisitions, spent its attempts or reached its deadline, whichever comes
// first, and prints its counts.
func TestContendedWorker(t *testing.T) {
	if os.Getenv(workerEnv) != "1" {
		return
	}
	path := os.Getenv(workerPathEnv)
	quota, err1 := strconv.Atoi(os.Getenv(workerQuotaEnv))
	maxAttempts, err2 := strconv.Atoi(os.Getenv(workerAttemptsEnv))
	deadlineNS, err3 := strconv.ParseInt(os.Getenv(workerDeadlineEnv), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || path == "" {
		t.Fatalf("bad worker environment: %v", err)
	}
	deadline := time.Unix(0, deadlineNS)

	fmt.Println("ready")
	// The start signal. EOF (the parent died) is a start too: the deadline
	// still bounds the run.
	bufio.NewReader(os.Stdin).ReadString('\n')

	successes, attempts, lost, failed := 0, 0, 0, 0
	for successes < quota && attempts < maxAttempts && time.Now().Before(deadline) {
		attempts++
		l, err := lease.Acquire(path, time.Minute)
		if errors.Is(err, lease.ErrHeld) {
			continue
		}
		if err != nil {
			// Nothing else should fail here. Counted and reported (the
			// parent logs the first few), so that the numbers still come.
			failed++
			fmt.Fprintf(os.Stderr, "Acquire: %v\n", err)
			continue
		}
		successes++
		switch err := l.Release(); {
		case errors.Is(err, lease.ErrLost):
			// Release can report ErrLost although its released version
			// was linked: another process acquired on top of it before
			// Release listed the directory to check that nothing newer
			// exists (a release that linked in time does not list, but
			// one on a cleanup version does). Counted as lostrel.
			lost++
		case err != nil:
			failed++
			fmt.Fprintf(os.Stderr, "Release: %v\n", err)
		}
	}
	fmt.Printf("%s %d %d %d %d\n", workerResult, successes, attempts, lost, failed)
}

type benchWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

// BenchmarkContendedAcquire: 8 processes loop Acquire(+Release) on one lease
// until they made b.N acquisitions between them. ns/op and ns/acquire are
// wall time per successful acquisition; ns/attempt is wall time per Acquire
// call (of any outcome, all processes together); attempts/acquire is how many
// calls an acquisition took; lostrel/acquire is the share of Releases that
// returned ErrLost although they released, errors/acquire the count of
// other errors per acquisition, which should be 0 (see TestContendedWorker;
// the first few are logged). Process start-up is not timed.
func BenchmarkContendedAcquire(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	path := filepath.Join(benchDir(b), "lease")
	deadline := time.Now().Add(workerTimeout)

	workers := make([]*benchWorker, 0, contendedWorkers)
	// Whatever happens, end and reap every worker started.
	defer func() {
		for _, w := range workers {
			w.stdin.Close()
			if w.cmd.ProcessState == nil {
				w.cmd.Process.Kill()
				w.cmd.Wait()
			}
		}
	}()
	for i := range contendedWorkers {
		quota := b.N / contendedWorkers
		if i < b.N%contendedWorkers {
			quota++
		}
		cmd := exec.Command(exe, "-test.run=^TestContendedWorker$", "-test.bench=^$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			workerEnv+"=1",
			workerPathEnv+"="+path,
			workerQuotaEnv+"="+strconv.Itoa(quota),
			workerAttemptsEnv+"="+strconv.Itoa(1000*quota+10000),
			workerDeadlineEnv+"="+strconv.FormatInt(deadline.UnixNano(), 10),
		)
		w := &benchWorker{cmd: cmd}
		cmd.Stderr = &w.stderr
		if w.stdin, err = cmd.StdinPipe(); err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		w.stdout = bufio.NewReader(out)
		if err := cmd.Start(); err != nil {
			w.stdin.Close()
			b.Fatal(err)
		}
		workers = append(workers, w)
	}
	for _, w := range workers {
		if line, err := w.stdout.ReadString('\n'); line != "ready\n" {
			b.Fatalf("worker did not start: %q %v\n%s", line, err, w.stderr.String())
		}
	}

	b.ResetTimer()
	b.StartTimer()
	for _, w := range workers {
		io.WriteString(w.stdin, "go\n")
		w.stdin.Close()
	}
	outputs := make([][]byte, len(workers))
	for i, w := range workers {
		// Read all of stdout before Wait, which closes the pipe.
		outputs[i], _ = io.ReadAll(w.stdout)
		if err := w.cmd.Wait(); err != nil {
			b.StopTimer()
			b.Fatalf("worker: %v\n%s%s", err, outputs[i], w.stderr.String())
		}
	}
	b.StopTimer()

	successes, attempts, lost, failed := 0, 0, 0, 0
	var errs []string
	for i, out := range outputs {
		var s, a, r, f int
		found := false
		for _, line := range strings.Split(string(out), "\n") {
			if _, err := fmt.Sscanf(line, workerResult+" %d %d %d %d", &s, &a, &r, &f); err == nil {
				found = true
				break
			}
		}
		if !found {
			b.Fatalf("worker %d reported nothing:\n%s%s", i, out, workers[i].stderr.String())
		}
		successes += s
		attempts += a
		lost += r
		failed += f
		if f > 0 && len(errs) < 3 {
			errs = append(errs, strings.SplitN(workers[i].stderr.String(), "\n", 2)[0])
		}
	}
	if failed > 0 {
		b.Logf("%d unexpected errors in %d attempts, e.g.:\n%s", failed, attempts, strings.Join(errs, "\n"))
	}
	if successes < b.N {
		b.Errorf("workers made %d acquisitions of %d (attempts or time ran out)", successes, b.N)
	}
	if successes == 0 {
		return
	}
	elapsed := float64(b.Elapsed().Nanoseconds())
	b.ReportMetric(elapsed/float64(successes), "ns/op")
	b.ReportMetric(elapsed/float64(successes), "ns/acquire")
	b.ReportMetric(elapsed/float64(attempts), "ns/attempt")
	b.ReportMetric(float64(attempts)/float64(successes), "attempts/acquire")
	b.ReportMetric(float64(lost)/float64(successes), "lostrel/acquire")
	b.ReportMetric(float64(failed)/float64(successes), "errors/acquire")
}
