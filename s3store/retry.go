package s3store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// The store makes its own retries, not the SDK's: the SDK would retry a
// conditional PUT whose first attempt landed and whose reply was lost, get
// 412 for it (the object is no longer at the old ETag: it is at ours), and
// report a write that won as one that lost. Here an attempt that may have
// landed marks the write unsure, and a 412 after it is an unknown outcome,
// which the protocol resolves by reading the object back (every record it
// writes is unique).
//
// A call makes at most maxAttempts attempts, all within its context. While
// more than minSplit is left of the context, an attempt that is not the
// last gets half of what is left: a connection that hangs (a dead peer
// behind a NAT, a stopped server) then leaves time for a new one.
const (
	maxAttempts  = 3
	minSplit     = time.Second
	firstBackoff = 20 * time.Millisecond
)

// retryable is how the SDK's standard retryer tells a transient error: a
// connection error, a timeout, 500, 502, 503, 504, throttling, S3's
// RequestTimeout.
var retryable = retry.IsErrorRetryables(retry.DefaultRetryables)

// transient reports whether an attempt that failed with err, under the
// attempt's context ctx, may be tried again. It is also an attempt whose
// request may have reached the server.
func transient(ctx context.Context, err error) bool {
	return ctx.Err() != nil || retryable.IsErrorRetryable(err) == aws.TrueTernary
}

// retry runs attempt until it returns nil, or an error it does not call
// retryable, or maxAttempts attempts were made, or ctx ends. Its error
// names op and the store.
func (s *Store) retry(ctx context.Context, op string, attempt func(ctx context.Context) (retryable bool, err error)) error {
	for i := 0; ; i++ {
		actx, cancel := attemptContext(ctx, i)
		again, err := attempt(actx)
		cancel()
		if err == nil {
			return nil
		}
		if !again || i+1 == maxAttempts || ctx.Err() != nil || !pause(ctx, i) {
			e := &opError{op: op, loc: s.name, err: err}
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				e.ctxErr = cerr
			}
			return e
		}
	}
}

// attemptContext is the context of attempt i of a call whose context is
// ctx.
func attemptContext(ctx context.Context, i int) (context.Context, context.CancelFunc) {
	if i < maxAttempts-1 {
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left >= 2*minSplit {
				return context.WithTimeout(ctx, left/2)
			}
		}
	}
	return ctx, func() {}
}

// pause waits before attempt i+1 (a random time up to firstBackoff << i),
// and reports false if ctx ends first.
func pause(ctx context.Context, i int) bool {
	d := firstBackoff << i
	d = d/2 + rand.N(d/2+1)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// opError is an error of one call of the store.
type opError struct {
	op, loc string
	err     error
	ctxErr  error // the call's context ended, and err does not say so
}

func (e *opError) Error() string {
	if e.ctxErr != nil {
		return fmt.Sprintf("s3store: %s %s: %v, and then %v", e.op, e.loc, e.err, e.ctxErr)
	}
	return fmt.Sprintf("s3store: %s %s: %v", e.op, e.loc, e.err)
}

func (e *opError) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{e.err, e.ctxErr}
	}
	return []error{e.err}
}

// sdkError is an error of the SDK, said in one short line.
type sdkError struct{ err error }

// short wraps an error of the SDK as an sdkError.
func short(err error) error {
	if err == nil {
		return nil
	}
	return &sdkError{err}
}

func (e *sdkError) Unwrap() error { return e.err }

// Error says what the SDK's error is: an S3 error as its status, code
// and message; another without the SDK's prefix. Neither holds a
// credential: they are sent in headers, never in the URL.
func (e *sdkError) Error() string {
	var re *awshttp.ResponseError
	if errors.As(e.err, &re) && re.HTTPStatusCode() != 0 {
		msg := fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
		var ae smithy.APIError
		if errors.As(e.err, &ae) {
			msg += " " + ae.ErrorCode()
			if m := ae.ErrorMessage(); m != "" {
				msg += ": " + m
			}
		}
		if id := re.ServiceRequestID(); id != "" {
			msg += " (request id " + id + ")"
		}
		return msg
	}
	var ue *url.Error
	if errors.As(e.err, &ue) {
		// Not "Get \"http://host/bucket/key?x-id=GetObject\": EOF": the
		// location is named already.
		return ue.Err.Error()
	}
	if re != nil { // no reply
		return re.Err.Error()
	}
	var oe *smithy.OperationError
	if errors.As(e.err, &oe) {
		return oe.Err.Error()
	}
	return e.err.Error()
}

// status is the HTTP status of err's reply, 0 if it has none.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// code is the S3 error code of err ("NoSuchKey"), "" if it has none.
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
