package lease

import (
	"bytes"
	"maps"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeRecord checks decodeRecord on arbitrary bytes: it never panics;
// what it accepts satisfies the record's rules and survives a round trip
// through encodeRecord; and it rejects anything larger than MaxRecordSize.
// (Seeds stay small: a 64 KiB one makes the fuzzer spend its time minimizing.
// TestDecodeRecordRejectsOversized covers the size bound exactly.)
func FuzzDecodeRecord(f *testing.F) {
	at := time.Date(2030, 6, 1, 12, 0, 0, 123456789, time.UTC)
	valid := encodeRecord(&Record{
		InstanceID: "0b6f5a8e-6f55-4d4a-9d1f-2c3e4f5a6b7c", PID: 4242, Host: "host-a",
		AcquiredAt: at, RenewedAt: at.Add(time.Second), TTL: 10 * time.Second,
		Meta: map[string]string{"endpoint": "10.0.0.7:8080"}, Epoch: 7,
	})
	released := encodeRecord(&Record{
		InstanceID: "x", AcquiredAt: at, RenewedAt: at, Epoch: 1,
	})
	for _, seed := range []string{
		string(valid),
		string(released),
		strings.TrimSpace(string(valid)),
		string(valid[:len(valid)/2]),
		string(valid) + "garbage",
		string(valid) + string(valid),
		"",
		"null",
		"{}",
		"[]",
		`"x"`,
		`{"instance_id":"x","acquired_at":"2030-06-01T12:00:00+02:00","renewed_at":"2030-06-01T12:00:00.5-07:30","ttl":1,"epoch":18446744073709551615}`,
		`{"instance_id":"x","acquired_at":"0000-01-01T00:00:00Z","renewed_at":"9999-12-31T23:59:59.999999999Z","ttl":9223372036854775807,"epoch":1}`,
		`{"INSTANCE_ID":"x","Acquired_At":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:00Z","ttl":0,"epoch":1,"meta":{}}`,
		`{"instance_id":"\ud800","acquired_at":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:00Z","ttl":1,"epoch":1,"meta":{"\u0000":"\xff"}}`,
		`{"instance_id":"x","acquired_at":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:00Z","ttl":-1,"epoch":1}`,
		`{"instance_id":"x","acquired_at":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:00Z","ttl":1e3,"epoch":1}`,
		`{"instance_id":"x","acquired_at":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:00Z","ttl":1,"epoch":0}`,
		`{"instance_id":"x","instance_id":"","acquired_at":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:00Z","ttl":1,"epoch":1}`,
		`{"instance_id":"x","acquired_at":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:00Z","ttl":0,"epoch":3,"slot":{"start":"2030-06-01T12:00:00Z","length":3600000000000,"epoch":3,"exit_status":1}}`,
		`{"instance_id":"x","acquired_at":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:00Z","ttl":1,"epoch":3,"slot":{"start":"2030-06-01T12:00:00+01:00","length":-1,"epoch":0}}`,
		`{"instance_id":"x","acquired_at":"2030-06-01T12:00:00Z","renewed_at":"2030-06-01T12:00:00Z","ttl":1,"epoch":3,"slot":null}`,
		"{\"instance_id\":\"\xff\xfe\",\"acquired_at\":\"2030-06-01T12:00:00Z\",\"renewed_at\":\"2030-06-01T12:00:00Z\",\"ttl\":1,\"epoch\":1}",
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data)
		if err != nil {
			if r != nil {
				t.Fatalf("decodeRecord returned a record with error %v", err)
			}
			if err != errUnreadable {
				t.Fatalf("decodeRecord error %v, want errUnreadable", err)
			}
			return
		}
		if len(data) > MaxRecordSize {
			t.Fatalf("accepted %d bytes, more than MaxRecordSize", len(data))
		}
		if r.InstanceID == "" || r.TTL < 0 || r.Epoch == 0 || r.RenewedAt.IsZero() || r.AcquiredAt.IsZero() {
			t.Fatalf("accepted an invalid record: %+v", r)
		}
		again := encodeRecord(r)
		r2, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record %q rejected: %v", again, err)
		}
		if !recordsEqual(r, r2) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, r2)
		}
		if third := encodeRecord(r2); !bytes.Equal(third, again) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
	})
}

// recordsEqual compares records as values: instants by Equal, Meta with nil
// and empty alike (omitempty drops an empty one).
func recordsEqual(a, b *Record) bool {
	return a.InstanceID == b.InstanceID && a.PID == b.PID && a.Host == b.Host &&
		a.AcquiredAt.Equal(b.AcquiredAt) && a.RenewedAt.Equal(b.RenewedAt) &&
		a.TTL == b.TTL && a.Epoch == b.Epoch && maps.Equal(a.Meta, b.Meta) && slotsEqual(a.Slot, b.Slot)
}

func slotsEqual(a, b *Slot) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Start.Equal(b.Start) && a.Length == b.Length && a.Epoch == b.Epoch &&
		(a.ExitStatus == nil) == (b.ExitStatus == nil) && (a.ExitStatus == nil || *a.ExitStatus == *b.ExitStatus)
}

func TestDecodeRecordRejectsOversized(t *testing.T) {
	at := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := encodeRecord(&Record{InstanceID: "x", AcquiredAt: at, RenewedAt: at, TTL: time.Second, Epoch: 1})
	fits := append(bytes.Clone(valid), bytes.Repeat([]byte(" "), MaxRecordSize-len(valid))...)
	if _, err := decodeRecord(fits); err != nil {
		t.Fatalf("a record of exactly MaxRecordSize bytes rejected: %v", err)
	}
	if _, err := decodeRecord(append(fits, ' ')); err == nil {
		t.Fatal("a record of MaxRecordSize+1 bytes accepted")
	}
}
