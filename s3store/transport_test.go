package s3store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// faultTransport sits between a store's client and the server, and does
// to each request what its rule says.
type faultTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	rule func(r *http.Request) fault
	// log records every request as "METHOD key", in order.
	log []string
	n   atomic.Int64
}

// fault is what happens to one request.
type fault struct {
	delay time.Duration // before it is sent
	hang  bool          // never answered: until its context ends
	// reply, if not zero, answers the request with this status and S3
	// error code without sending it on (the request took no effect).
	reply int
	code  string
	// after, if not zero, sends the request on, then replaces the reply by
	// this status and code (the request took effect).
	after     int
	afterCode string
	drop      bool // send the request on, then lose the reply
	strip     bool // remove If-Match and If-None-Match before sending
	noRange   bool // remove Range before sending
	unquote   bool // take the quotes off the reply's ETag
	then      func()
}

func newFaultTransport(rule func(r *http.Request) fault) *faultTransport {
	return &faultTransport{base: http.DefaultTransport.(*http.Transport).Clone(), rule: rule}
}

func (ft *faultTransport) client() *http.Client { return &http.Client{Transport: ft} }

// setRule replaces the rule, and starts a new log.
func (ft *faultTransport) setRule(rule func(r *http.Request) fault) {
	ft.mu.Lock()
	ft.rule = rule
	ft.log = nil
	ft.mu.Unlock()
}

// count counts the requests in the log that are exactly req.
func (ft *faultTransport) count(req string) int {
	n := 0
	for _, r := range ft.requests() {
		if r == req {
			n++
		}
	}
	return n
}

// requests returns the log so far.
func (ft *faultTransport) requests() []string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]string(nil), ft.log...)
}

// requestKey is the key a path-style request names.
func requestKey(r *http.Request) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return key
}

func (ft *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ft.mu.Lock()
	ft.log = append(ft.log, r.Method+" "+requestKey(r))
	rule := ft.rule
	ft.mu.Unlock()
	ft.n.Add(1)
	var f fault
	if rule != nil {
		f = rule(r)
	}
	if f.then != nil {
		defer f.then()
	}
	ctx := r.Context()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.reply != 0 {
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return s3Error(r, f.reply, f.code), nil
	}
	if f.strip {
		r.Header.Del("If-Match")
		r.Header.Del("If-None-Match")
	}
	if f.noRange {
		r.Header.Del("Range")
	}
	resp, err := ft.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	switch {
	case f.drop:
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("connection reset by peer (injected: the reply was lost)")
	case f.after != 0:
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return s3Error(r, f.after, f.afterCode), nil
	case f.unquote:
		if e := resp.Header.Get("ETag"); e != "" {
			resp.Header.Set("ETag", strings.Trim(e, `"`))
		}
	}
	return resp, nil
}

// s3Error is a reply as S3 makes one for an error.
func s3Error(r *http.Request, status int, code string) *http.Response {
	if code == "" {
		code = map[int]string{
			403: "AccessDenied", 404: "NoSuchKey", 409: "ConditionalRequestConflict",
			412: "PreconditionFailed", 500: "InternalError", 501: "NotImplemented", 503: "SlowDown",
		}[status]
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>injected %d</Message><RequestId>fault</RequestId></Error>`, code, status)
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/xml"}, "X-Amz-Request-Id": {"fault"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// isPut reports whether r is a PutObject of key.
func isPut(r *http.Request, key string) bool {
	return r.Method == http.MethodPut && requestKey(r) == key
}

// once returns a rule that applies f to the first request that match
// selects, and nothing to others.
func once(match func(*http.Request) bool, f fault) func(*http.Request) fault {
	var done atomic.Bool
	return func(r *http.Request) fault {
		if match(r) && done.CompareAndSwap(false, true) {
			return f
		}
		return fault{}
	}
}

// withTimeout returns a context that ends after d.
func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// newRand returns a random source seeded from the clock.
func newRand() *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	return rand.New(rand.NewPCG(seed, seed>>32))
}
