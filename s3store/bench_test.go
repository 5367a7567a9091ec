package s3store_test

// Benchmarks of the S3 store against gofakes3 on loopback, served by this
// process, beside the floor measured in the same run: one conditional PUT
// (If-Match, the record's size) and one GET through the same client.
// Targets: Renew <= 1.5x FloorPut; Acquire+Release is a GET and two PUTs.
//
//	go test -run '^$' -bench . -benchtime=2000x -count=3 ./s3store/

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/leaserun/leaserun/lease"
	"github.com/leaserun/leaserun/s3store"
)

// record is a record-sized body: a renewal's is about this long.
var record = []byte(`{"instance_id":"2b1c2c4e-5b8a-4d7e-9a34-0d9a1b2f6e11","pid":12345,"host":"worker-7f9c","acquired_at":"2026-01-02T03:04:05.123456789Z","renewed_at":"2026-01-02T03:04:05.123456789Z","ttl":15000000000,"epoch":42}` + "\n")

func BenchmarkFloorPut(b *testing.B) {
	srv := startServer(b)
	st := open(b, location(srv, newKey("bench")))
	c := s3store.Client(st)
	ctx := context.Background()
	key := st.Key()
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: &key, Body: bytes.NewReader(record), IfNoneMatch: aws.String("*")})
	if err != nil {
		b.Fatal(err)
	}
	etag := out.ETag
	body := bytes.Clone(record)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		copy(body[len(body)-10:], fmt.Sprintf("%09d", i)) // a new ETag each time
		out, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: &key, Body: bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))), IfMatch: etag,
		})
		if err != nil {
			b.Fatal(err)
		}
		etag = out.ETag
	}
}

func BenchmarkFloorGet(b *testing.B) {
	srv := startServer(b)
	st := open(b, location(srv, newKey("bench")))
	c := s3store.Client(st)
	ctx := context.Background()
	key := st.Key()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: &key, Body: bytes.NewReader(record)}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	for b.Loop() {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: &key})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := out.Body.Read(buf); err != nil {
				break
			}
		}
		out.Body.Close()
	}
}

func BenchmarkRenew(b *testing.B) {
	srv := startServer(b)
	st := open(b, location(srv, newKey("bench")))
	l, err := lease.AcquireStore(st, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := l.Renew(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	l.Release()
}

func BenchmarkAcquireRelease(b *testing.B) {
	srv := startServer(b)
	st := open(b, location(srv, newKey("bench")))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.Verify(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		l, err := lease.AcquireStore(st, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInterleaved makes, in each iteration, one of each: a
// conditional PUT and a GET (the floor), a Renew, and an Acquire and
// Release, on one server, so that the machine's load hits them alike. It
// reports each one's mean and the ratios to the floor.
func BenchmarkInterleaved(b *testing.B) {
	srv := startServer(b)
	ctx := context.Background()
	floor := open(b, location(srv, newKey("bench")))
	c := s3store.Client(floor)
	key := floor.Key()
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: &key, Body: bytes.NewReader(record), IfNoneMatch: aws.String("*")})
	if err != nil {
		b.Fatal(err)
	}
	etag := out.ETag
	body := bytes.Clone(record)
	held := open(b, location(srv, newKey("bench")))
	l, err := lease.AcquireStore(held, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Release()
	free := open(b, location(srv, newKey("bench")))
	if err := free.Verify(ctx); err != nil {
		b.Fatal(err)
	}
	var put, get, renew, acqrel time.Duration
	buf := make([]byte, 4096)
	n := 0
	for b.Loop() {
		t0 := time.Now()
		copy(body[len(body)-10:], fmt.Sprintf("%09d", n))
		out, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: &key, Body: bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))), IfMatch: etag,
		})
		if err != nil {
			b.Fatal(err)
		}
		etag = out.ETag
		t1 := time.Now()
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: &key})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := g.Body.Read(buf); err != nil {
				break
			}
		}
		g.Body.Close()
		t2 := time.Now()
		if err := l.Renew(); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		a, err := lease.AcquireStore(free, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Release(); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		put, get, renew, acqrel = put+t1.Sub(t0), get+t2.Sub(t1), renew+t3.Sub(t2), acqrel+t4.Sub(t3)
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	b.ReportMetric(per(put), "put-ns")
	b.ReportMetric(per(get), "get-ns")
	b.ReportMetric(per(renew), "renew-ns")
	b.ReportMetric(per(acqrel), "acq+rel-ns")
	b.ReportMetric(float64(renew)/float64(put), "renew/put")
	b.ReportMetric(float64(acqrel)/float64(get+2*put), "acq+rel/(get+2put)")
	b.ReportMetric(0, "ns/op")
}
