package lease_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// heldRecordBytes returns the bytes of a real, held record of path's lease
// (the published copy written by a holder on clk).
func heldRecordBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestUnreadableHeadIsFree: a newest version that is not a lease record
// makes the lease free, whatever lies below it.
func TestUnreadableHeadIsFree(t *testing.T) {
	const ttl = time.Hour
	scratch := leasePathIn(t)
	mustAcquireLease(t, scratch, ttl, lease.WithClock(clockAt(0)))
	valid := heldRecordBytes(t, scratch)
	trimmed := bytes.TrimSpace(valid)
	withField := func(field, value string) []byte {
		// Replace one field's value in the valid record.
		s := string(trimmed)
		i := strings.Index(s, `"`+field+`":`)
		if i < 0 {
			t.Fatalf("no %s in %s", field, s)
		}
		j := i + len(field) + 3
		k := j + strings.IndexAny(s[j:], ",}")
		if s[j] == '"' {
			k = j + 1 + strings.IndexByte(s[j+1:], '"') + 1
		}
		return []byte(s[:j] + value + s[k:])
	}
	pad := func(n int) []byte { return append(bytes.Clone(valid), bytes.Repeat([]byte(" "), n-len(valid))...) }

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"whitespace", []byte(" \n\t")},
		{"truncated", valid[:len(valid)/2]},
		{"truncated by one", trimmed[:len(trimmed)-1]},
		{"garbage", []byte("\x00\xff\xfeGIF89a not json")},
		{"nul bytes", make([]byte, 512)},
		{"json null", []byte("null")},
		{"json array", []byte(`[{"instance_id":"x"}]`)},
		{"json string", []byte(`"held"`)},
		{"json number", []byte(`42`)},
		{"empty object", []byte(`{}`)},
		{"other shape", []byte(`{"owner":"me","expires":"2030-06-01T13:00:00Z"}`)},
		{"wrong type", withField("ttl", `"1h"`)},
		{"no instance id", withField("instance_id", `""`)},
		{"zero epoch", withField("epoch", `0`)},
		{"negative ttl", withField("ttl", `-1`)},
		{"zero renewed_at", withField("renewed_at", `"0001-01-01T00:00:00Z"`)},
		{"bad time", withField("renewed_at", `"yesterday"`)},
		{"trailing garbage", append(bytes.Clone(valid), "garbage"...)},
		{"trailing brace", append(bytes.Clone(trimmed), '}')},
		{"two records", append(bytes.Clone(valid), valid...)},
		{"larger than MaxRecordSize", pad(lease.MaxRecordSize + 1)},
		{"much larger than MaxRecordSize", pad(4 * lease.MaxRecordSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := leasePathIn(t)
			clk := clockAt(0)
			holder := mustAcquireLease(t, path, ttl, lease.WithClock(clk))
			writeVersion(t, path, newestVersion(t, path)+1, tc.data)

			if st := mustReadStatus(t, path, lease.WithClock(clk)); st.State != lease.StateFree || st.Record != nil {
				t.Fatalf("Read = %s %+v, want free", st.State, st.Record)
			}
			l, err := lease.Acquire(path, ttl, lease.WithClock(clk))
			if err != nil {
				t.Fatalf("Acquire over an unreadable head: %v", err)
			}
			if l.Epoch() <= holder.Epoch() {
				t.Fatalf("epoch %d over an unreadable head, not above %d", l.Epoch(), holder.Epoch())
			}
			wantHeldBy(t, path, clk, l)
			if err := holder.Renew(); !errors.Is(err, lease.ErrLost) {
				t.Fatalf("old holder's Renew: %v, want ErrLost", err)
			}
		})
	}

	// The controls: the same harness with readable heads finds them held.
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"valid", valid},
		{"valid without newline", trimmed},
		{"exactly MaxRecordSize", pad(lease.MaxRecordSize)},
		{"unknown field", append(append(bytes.Clone(trimmed[:len(trimmed)-1]), `,"future":1`...), '}')},
	} {
		t.Run("control "+tc.name, func(t *testing.T) {
			path := leasePathIn(t)
			clk := clockAt(0)
			mustAcquireLease(t, path, ttl, lease.WithClock(clk))
			writeVersion(t, path, newestVersion(t, path)+1, tc.data)
			if st := mustReadStatus(t, path, lease.WithClock(clk)); st.State != lease.StateHeld {
				t.Fatalf("Read = %s, want held", st.State)
			}
			if _, err := lease.Acquire(path, ttl, lease.WithClock(clk)); !errors.Is(err, lease.ErrHeld) {
				t.Fatalf("Acquire: %v, want ErrHeld", err)
			}
		})
	}
}

// TestHugeHeadReadIsBounded: a read loads at most about MaxRecordSize of a
// huge (sparse) version file.
func TestHugeHeadReadIsBounded(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
	head := filepath.Join(path+".d", "2")
	f, err := os.Create(head)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		f.Close()
		t.Skipf("cannot make a 1 GiB sparse file here: %v", err)
	}
	f.Close()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	st := mustReadStatus(t, path, lease.WithClock(clk))
	runtime.ReadMemStats(&after)
	if st.State != lease.StateFree {
		t.Fatalf("Read of a 1 GiB head = %s, want free", st.State)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("Read of a 1 GiB head allocated %d bytes", alloc)
	}
	mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
}

// TestJunkInVersionDirIgnored: temp files and names that are not canonical
// version numbers are not versions.
func TestJunkInVersionDirIgnored(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	l := mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
	for _, name := range []string{"tmp-left-by-a-crash", "02", "+3", "0", "-1", "4.json", "x", "99999999999999999999999"} {
		if err := os.WriteFile(filepath.Join(path+".d", name), []byte("{garbage"), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	wantHeldBy(t, path, clk, l)
	if _, err := lease.Acquire(path, time.Hour, lease.WithClock(clk)); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire: %v, want ErrHeld", err)
	}
	clk.Advance(time.Second)
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
}

// ioErrorCase calls Acquire, Read and Wait on path, which cannot hold a
// lease, and checks that each returns an error that is neither ErrHeld nor
// "free", and satisfies is (when not nil).
func ioErrorCase(t *testing.T, path string, is error) {
	t.Helper()
	clk := clockAt(0)
	check := func(op string, err error) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s: no error, want an I/O error", op)
		case errors.Is(err, lease.ErrHeld) || errors.Is(err, lease.ErrInvalid):
			t.Errorf("%s: %v, want an I/O error", op, err)
		case is != nil && !errors.Is(err, is):
			t.Errorf("%s: %v, want errors.Is %v", op, err, is)
		}
	}
	l, err := lease.Acquire(path, time.Minute, lease.WithClock(clk))
	if l != nil {
		t.Errorf("Acquire returned a lease")
	}
	check("Acquire", err)
	st, err := lease.Read(path, lease.WithClock(clk))
	if err == nil {
		t.Errorf("Read: %s, want an I/O error", st.State)
	}
	check("Read", err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on a hang
	defer cancel()
	l, err = lease.Wait(ctx, path, time.Minute, lease.WithClock(clk))
	if l != nil {
		t.Errorf("Wait returned a lease")
	}
	check("Wait", err)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait kept waiting on an I/O error")
	}
}

func TestDirectoryAtPath(t *testing.T) {
	path := leasePathIn(t)
	if err := os.Mkdir(path, 0o777); err != nil {
		t.Fatal(err)
	}
	ioErrorCase(t, path, nil)
	if entries, _ := os.ReadDir(path); len(entries) != 0 {
		t.Errorf("something was written into the directory at PATH: %v", entries)
	}
	if _, err := os.Stat(path + ".d"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s.d was created: %v", path, err)
	}
}

func TestMissingParentDirectory(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "missing")
	ioErrorCase(t, filepath.Join(parent, "lease"), fs.ErrNotExist)
	if _, err := os.Stat(parent); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the missing parent was created: %v", err)
	}
}

// A directory at the newest version is an I/O error, as one at PATH is:
// never an unreadable record, so never a free lease.
func TestDirectoryAtNewestVersion(t *testing.T) {
	path := leasePathIn(t)
	mustAcquireLease(t, path, time.Hour, lease.WithClock(clockAt(0)))
	if err := os.Mkdir(filepath.Join(path+".d", "2"), 0o777); err != nil {
		t.Fatal(err)
	}
	ioErrorCase(t, path, nil)
}

func TestParentIsAFile(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	ioErrorCase(t, filepath.Join(parent, "lease"), nil)
}

func TestVersionDirIsAFile(t *testing.T) {
	t.Run("no lease yet", func(t *testing.T) {
		path := leasePathIn(t)
		if err := os.WriteFile(path+".d", []byte("x"), 0o666); err != nil {
			t.Fatal(err)
		}
		ioErrorCase(t, path, nil)
	})
	t.Run("after a holder", func(t *testing.T) {
		path := leasePathIn(t)
		l := mustAcquireLease(t, path, time.Hour, lease.WithClock(clockAt(0)))
		if err := os.RemoveAll(path + ".d"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".d", []byte("x"), 0o666); err != nil {
			t.Fatal(err)
		}
		ioErrorCase(t, path, nil)
		if err := l.Renew(); err == nil {
			t.Errorf("Renew with a file at PATH.d succeeded")
		}
	})
}

// TestHugeVersionNumber: a version named at the top of uint64 (left by a
// buggy or hostile writer) must not hang Acquire: it fails with
// ErrExhausted, and Read, which judges as Acquire does, says so too.
func TestHugeVersionNumber(t *testing.T) {
	path := leasePathIn(t)
	clk := clockAt(0)
	mustAcquireLease(t, path, time.Second, lease.WithClock(clk))
	bogus := filepath.Join(path+".d", "18446744073709551615") // math.MaxUint64
	if err := os.WriteFile(bogus, []byte("{garbage"), 0o666); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		l, err := lease.Acquire(path, time.Second, lease.WithClock(clk))
		if err == nil && l.Epoch() == 0 {
			err = errors.New("acquired with epoch 0")
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, lease.ErrExhausted) {
			t.Fatalf("Acquire: %v, want ErrExhausted", err)
		}
	case <-time.After(10 * time.Second): // a bound on a hang
		t.Error("Acquire over a version named MaxUint64 did not return within 10s")
		os.Remove(bogus) // let the spinning Acquire end
		<-done
	}
	if _, err := lease.Read(path, lease.WithClock(clk)); !errors.Is(err, lease.ErrExhausted) {
		t.Fatalf("Read: %v, want ErrExhausted", err)
	}
}

// TestSpentEpochs: a record whose epoch is the largest there is (written by
// a buggy or hostile writer) must not let the next holder wrap the epoch
// round to 0, which readers take for an unreadable record, hence a free
// lease: Acquire fails with ErrExhausted, and nothing is linked; Read,
// which judges as Acquire does, fails alike.
func TestSpentEpochs(t *testing.T) {
	for _, name := range []string{"newest version", "published copy only"} {
		t.Run(name, func(t *testing.T) {
			path := leasePathIn(t)
			clk := clockAt(0)
			l := mustAcquireLease(t, path, time.Hour, lease.WithClock(clk))
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
			data := heldRecordBytes(t, path)
			spent := bytes.Replace(data, []byte(`"epoch":1`), []byte(`"epoch":18446744073709551615`), 1)
			if bytes.Equal(spent, data) {
				t.Fatalf("no epoch 1 in %s", data)
			}
			target := filepath.Join(path+".d", "3")
			if name == "published copy only" {
				// An unreadable newest version: the next epoch comes
				// from the published copy.
				target = path
				if err := os.WriteFile(filepath.Join(path+".d", "3"), []byte("{garbage"), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if err := os.WriteFile(target, spent, 0o666); err != nil {
				t.Fatal(err)
			}
			l2, err := lease.Acquire(path, time.Hour, lease.WithClock(clk))
			if err == nil {
				t.Fatalf("Acquire after epoch %d succeeded with epoch %d", uint64(math.MaxUint64), l2.Epoch())
			}
			if !errors.Is(err, lease.ErrExhausted) {
				t.Fatalf("Acquire: %v, want ErrExhausted", err)
			}
			if _, err := lease.Read(path, lease.WithClock(clk)); !errors.Is(err, lease.ErrExhausted) {
				t.Fatalf("Read: %v, want ErrExhausted", err)
			}
			if _, err := os.Stat(filepath.Join(path+".d", "4")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a version 4 was linked: %v", err)
			}
		})
	}
}
