package lease_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

func TestReadStates(t *testing.T) {
	const ttl = 10 * time.Second
	path := leasePathIn(t)
	clk := clockAt(0)

	if st := mustReadStatus(t, path, lease.WithClock(clk)); st.State != lease.StateFree || st.Record != nil {
		t.Fatalf("Read of a missing lease = %s %+v, want free", st.State, st.Record)
	}
	if _, err := os.Stat(path + ".d"); !os.IsNotExist(err) {
		t.Fatalf("Read created %s.d: %v", path, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Read created %s: %v", path, err)
	}

	l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
	st := mustReadStatus(t, path, lease.WithClock(clk))
	if st.State != lease.StateHeld || st.Record == nil {
		t.Fatalf("Read of a held lease = %s %+v", st.State, st.Record)
	}
	if r := l.Record(); st.Record.InstanceID != r.InstanceID || st.Record.Epoch != r.Epoch ||
		st.Record.PID != r.PID || st.Record.Host != r.Host || st.Record.TTL != r.TTL ||
		!st.Record.AcquiredAt.Equal(r.AcquiredAt) || !st.Record.RenewedAt.Equal(r.RenewedAt) {
		t.Fatalf("Read record %+v, holder's %+v", st.Record, r)
	}

	later := clockAt(ttl)
	if st := mustReadStatus(t, path, lease.WithClock(later)); st.State != lease.StateExpired || st.Record == nil || st.Record.InstanceID != l.InstanceID() {
		t.Fatalf("Read after the TTL = %s %+v, want expired", st.State, st.Record)
	}
	if st := mustReadStatus(t, path, lease.WithClock(clockAt(ttl-1))); st.State != lease.StateHeld {
		t.Fatalf("Read 1ns before the TTL = %s, want held", st.State)
	}

	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if st := mustReadStatus(t, path, lease.WithClock(clk)); st.State != lease.StateReleased || st.Record == nil {
		t.Fatalf("Read after Release = %s %+v, want released", st.State, st.Record)
	}
}

func TestReadNeverWrites(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, time.Second, lease.WithClock(clk))
	snapshot := func() []string {
		var names []string
		for _, dir := range []string{filepath.Dir(path), path + ".d"} {
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				names = append(names, filepath.Join(dir, e.Name()))
			}
		}
		return names
	}
	before := snapshot()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{0, time.Hour} { // held, expired
		mustReadStatus(t, path, lease.WithClock(clockAt(at)))
	}
	if after := snapshot(); !slices.Equal(before, after) {
		t.Fatalf("Read changed the directories: %v -> %v", before, after)
	}
	if again, _ := os.ReadFile(path); string(again) != string(data) {
		t.Fatalf("Read changed the published record")
	}
	wantHeldBy(t, path, clk, l)
}

// TestWithMetaRoundTrip: a follower finds the holder's Meta through Read,
// and no caller can change the handle's Meta through a map it holds.
func TestWithMetaRoundTrip(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	meta := map[string]string{"endpoint": "grpc://10.1.2.3:7443", "empty": "", "unicode": "héllo <&> \u2028"}
	want := maps.Clone(meta)
	l := mustAcquireLease(t, path, time.Minute, lease.WithClock(clk), lease.WithMeta(meta))
	meta["endpoint"] = "changed"

	st := mustReadStatus(t, path, lease.WithClock(clk))
	if !maps.Equal(st.Record.Meta, want) {
		t.Fatalf("Read Meta = %q, want %q", st.Record.Meta, want)
	}
	r := l.Record()
	r.Meta["endpoint"] = "changed through Record()"
	if got := l.Record().Meta; !maps.Equal(got, want) {
		t.Fatalf("handle Meta = %q after changing a copy, want %q", got, want)
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if st := mustReadStatus(t, path, lease.WithClock(clk)); !maps.Equal(st.Record.Meta, want) {
		t.Fatalf("Read Meta after Renew = %q, want %q", st.Record.Meta, want)
	}

	// No Meta: the field stays empty.
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	plain := mustAcquireLease(t, path, time.Minute, lease.WithClock(clk))
	if st := mustReadStatus(t, path, lease.WithClock(clk)); len(st.Record.Meta) != 0 || len(plain.Record().Meta) != 0 {
		t.Fatalf("Meta of an acquisition without WithMeta: %q", st.Record.Meta)
	}
}

// replaceFile replaces path with a new file holding data, as tools that
// write atomically do. (Writing PATH in place would write the newest
// version too: PATH is a hard link to it.)
func replaceFile(path string, data []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o666); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// TestReadUsesVersionsNotPublishedCopy: the newest version is the truth;
// PATH is a convenience copy, and a missing or damaged one changes nothing.
func TestReadUsesVersionsNotPublishedCopy(t *testing.T) {
	const ttl = time.Minute
	for name, damage := range map[string]func(path string) error{
		"missing": os.Remove,
		"garbage": func(path string) error { return replaceFile(path, []byte("garbage")) },
		"empty":   func(path string) error { return replaceFile(path, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			path := leasePathIn(t)
			clk := clockAt(0)
			l := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
			if err := damage(path); err != nil {
				t.Fatal(err)
			}
			wantHeldBy(t, path, clk, l)
			if _, err := lease.Acquire(path, ttl, lease.WithClock(clk)); err == nil {
				t.Fatal("Acquire succeeded on a held lease whose published copy is damaged")
			}
			clk.Advance(time.Second)
			if err := l.Renew(); err != nil {
				t.Fatal(err)
			}
			if got := readPublished(t, path); got.InstanceID != l.InstanceID() {
				t.Fatalf("Renew did not republish: %+v", got)
			}
		})
	}
}
