package etcdstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaserun/leaserun/internal/etcdtest"
	"github.com/leaserun/leaserun/lease"
)

// holderEnv makes the test binary a holder process: it acquires the lease
// at the location it names, says "held EPOCH", and renews every TTL/3
// until it is killed.
const holderEnv = "ETCDSTORE_TEST_HOLDER"

func TestMain(m *testing.M) {
	if loc := os.Getenv(holderEnv); loc != "" {
		os.Exit(holdForever(loc))
	}
	os.Exit(m.Run())
}

func holdForever(loc string) int {
	const ttl = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	s, err := Open(ctx, loc)
	cancel()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	l, err := lease.AcquireStore(s, ttl)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("held", l.Epoch())
	for {
		time.Sleep(ttl / 3)
		if err := l.Renew(); err != nil {
			fmt.Println(err)
			return 1
		}
	}
}

// leader returns the member of c that leads, asked through s.
func leader(t *testing.T, c *etcdtest.Cluster, s *Store) *etcdtest.Member {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range c.Members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := s.cli.Status(ctx, m.ClientURL)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return m
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}

// renewUntil renews l every period until end, each renewal a period after
// the start of the one before (as leaserun does), and fails t if a
// renewal fails or the handle lapses.
func renewUntil(t *testing.T, l *lease.Lease, period time.Duration, end time.Time) (renewals int) {
	t.Helper()
	for next := time.Now().Add(period); next.Before(end); {
		time.Sleep(time.Until(next))
		start := time.Now()
		next = start.Add(period)
		if err := l.Renew(); err != nil {
			t.Fatalf("renewal %d (took %v): %v", renewals+1, time.Since(start), err)
		}
		if time.Since(start) > period {
			t.Logf("renewal %d took %v", renewals+1, time.Since(start))
		}
		renewals++
		if l.Expired() {
			t.Fatalf("Expired after renewal %d", renewals)
		}
	}
	return renewals
}

// lapses checks that, with the cluster unable to answer, Renew fails by
// the handle's deadline (its calls end there), and Expired is true from
// the deadline on.
func lapses(t *testing.T, l *lease.Lease) {
	t.Helper()
	deadline := l.Deadline()
	start := time.Now()
	err := l.Renew()
	took := time.Since(start)
	t.Logf("Renew with no answer: %v after %v (the deadline was %v away)", err, took.Round(time.Millisecond), deadline.Sub(start).Round(time.Millisecond))
	if err == nil {
		t.Fatal("Renew succeeded with no cluster to answer")
	}
	if late := time.Since(deadline); late > time.Second {
		t.Errorf("Renew returned %v after the handle's deadline", late)
	}
	if !time.Now().Before(deadline) && !l.Expired() {
		t.Error("Expired is false after the deadline")
	}
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !l.Expired() {
		t.Error("Expired is false after the deadline")
	}
}

// acquiresAfter checks that, once the cluster answers again, the lease
// that l held and lost is acquired through s with a higher epoch. It
// tries for a while: the cluster may take a moment to answer, and the
// renewal that got no answer may still take effect once it does (its
// request waited in a frozen member's socket). That record holds until
// the renewal's start plus the TTL, a little after l's deadline, so a try
// right after the deadline may find the lease held.
func acquiresAfter(t *testing.T, s lease.Store, l *lease.Lease) {
	t.Helper()
	var (
		l2  *lease.Lease
		err error
	)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if l2, err = lease.AcquireStore(s, l.TTL()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no acquisition once the cluster is back: %v", err)
		}
	}
	if l2.Epoch() <= l.Epoch() {
		t.Errorf("epoch %d after %d", l2.Epoch(), l.Epoch())
	}
	l2.Release()
}

// A member frozen (SIGSTOP) while a holder renews: the renewal fails by
// the handle's deadline, which it cannot outlast, and Expired turns true
// then; Close does not hang on the frozen member. Once the member is
// back, the handle stays lost, and the lease can be acquired again with
// a higher epoch.
func TestFrozenMember(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	s := openT(t, loc)
	l, err := lease.AcquireStore(s, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	closing := openT(t, loc)
	c.Members[0].Freeze()
	defer c.Members[0].Thaw()
	lapses(t, l)

	start := time.Now()
	closing.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Close took %v with the member frozen", took)
	}

	c.Members[0].Thaw()
	if err := l.Renew(); !errors.Is(err, lease.ErrLost) {
		t.Errorf("Renew after the lapse: %v, want ErrLost", err)
	}
	acquiresAfter(t, s, l)
}

// A member that restarts (SIGKILL, then started again on its data) while
// a holder renews: a renewal begun while it is down waits for it and
// succeeds once it is back, within the TTL, and so do the next ones; the
// holder never lapses.
func TestMemberRestart(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	s := openT(t, loc)
	const ttl = 30 * time.Second // room for the client's reconnect backoff
	l, err := lease.AcquireStore(s, ttl)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Members[0]
	m.Kill()
	killed := time.Now()
	renewed := make(chan error, 1)
	go func() { renewed <- l.Renew() }()
	time.Sleep(200 * time.Millisecond)
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the member is back %v after the kill", time.Since(killed).Round(time.Millisecond))
	if err := <-renewed; err != nil {
		t.Fatalf("the renewal begun while the member was down: %v", err)
	}
	t.Logf("renewed %v after the kill", time.Since(killed).Round(time.Millisecond))
	renewUntil(t, l, 100*time.Millisecond, time.Now().Add(time.Second))
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// In a cluster of three, the leader frozen (a leader that hangs, or is
// cut off) while a holder renews every TTL/3: the other two elect a new
// leader, and every renewal succeeds in time, tried again on another
// member if it went to the frozen one.
func TestLeaderFrozen(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 3})
	loc := newKey(t, c)
	s := openT(t, loc)
	const ttl = 6 * time.Second
	l, err := lease.AcquireStore(s, ttl)
	if err != nil {
		t.Fatal(err)
	}
	m := leader(t, c, s)
	t.Logf("freezing the leader %s", m.Name)
	m.Freeze()
	defer m.Thaw()
	n := renewUntil(t, l, ttl/3, time.Now().Add(4*ttl))
	t.Logf("%d renewals with the leader frozen", n)
	m.Thaw()
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// In a cluster of three, two members frozen: no quorum. Renewals fail by
// the handle's deadline and the handle lapses in time; once the members
// are back, the lease is acquired again.
func TestQuorumLoss(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 3})
	loc := newKey(t, c)
	s := openT(t, loc)
	l, err := lease.AcquireStore(s, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members[1:] {
		m.Freeze()
		defer m.Thaw()
	}
	lapses(t, l)
	for _, m := range c.Members[1:] {
		m.Thaw()
	}
	acquiresAfter(t, s, l)
}

// A holder killed with SIGKILL is taken over by a waiting standby within
// TTL + 10% of the kill: the standby sees the holder's last renewal
// through its watch, and takes over once it has seen it unchanged for a
// TTL.
func TestTakeoverAfterKill(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	loc := newKey(t, c)
	const ttl = 3 * time.Second // as holdForever's
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command(exe, "-test.run=^$")
	holder.Env = append(os.Environ(), holderEnv+"="+loc)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "held ") {
		t.Fatalf("the holder says %q", line)
	}
	var epoch uint64
	fmt.Sscan(strings.TrimPrefix(line, "held "), &epoch)

	standby := openT(t, loc)
	got := make(chan *lease.Lease, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		l, err := lease.WaitStore(ctx, standby, ttl)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	time.Sleep(ttl + ttl/2) // the standby has seen renewals by now
	killed := time.Now()
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	l := <-got
	if l == nil {
		return
	}
	took := time.Since(killed)
	t.Logf("taken over %v after the kill (ttl %v)", took.Round(time.Millisecond), ttl)
	// The bound is TTL + 10%; the second beyond it is for a loaded test
	// machine (bench/etcd.sh measures it without).
	if took > ttl+ttl/10+time.Second {
		t.Errorf("taken over %v after the kill, more than TTL + 10%% (and a second)", took)
	}
	if l.Epoch() <= epoch {
		t.Errorf("epoch %d after %d", l.Epoch(), epoch)
	}
	l.Release()
}
