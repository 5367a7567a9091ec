package s3store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/leaserun/leaserun/lease"
)

// Store is a lease.Store over one object of an S3 bucket (or of an
// S3-compatible server), written only with conditional PutObject requests.
// It is safe for concurrent use, and keeps nothing about the lease between
// calls: only whether its server was found to enforce conditional writes.
type Store struct {
	client *s3.Client
	bucket string
	key    string
	name   string // String

	// proved is set once the server was found to enforce conditional
	// writes (Verify); refused holds the error that says it does not.
	// probing, a semaphore, lets one Verify probe at a time.
	proved  atomic.Bool
	refused atomic.Pointer[error]
	probing chan struct{}
}

var _ lease.Store = (*Store)(nil)

// An Option changes how Open makes its client.
type Option func(*settings)

type settings struct {
	httpClient aws.HTTPClient
}

// WithHTTPClient makes the store's client send its requests through c
// rather than the SDK's default HTTP client: for a proxy, custom TLS
// roots, or a test's fault injection.
func WithHTTPClient(c aws.HTTPClient) Option {
	return func(s *settings) { s.httpClient = c }
}

// Open opens the lease at location, s3://BUCKET/KEY with the optional
// parameters region=, endpoint= and path_style= (see Location). The
// client is configured by the AWS SDK's standard chain: credentials from
// the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN), AWS_PROFILE and the shared config and credentials
// files, web identity (EKS), container and instance metadata; the region
// from AWS_REGION or the profile; the endpoint of an S3-compatible server
// from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL. The location's parameters
// override them. Open makes no request: credentials are fetched, and the
// server is first reached, by the first call of the store.
//
// An error for the location itself wraps ErrLocation.
func Open(ctx context.Context, location string, opts ...Option) (*Store, error) {
	loc, err := ParseLocation(location)
	if err != nil {
		return nil, err
	}
	return OpenLocation(ctx, loc, opts...)
}

// OpenLocation is Open for a parsed location.
func OpenLocation(ctx context.Context, loc *Location, opts ...Option) (*Store, error) {
	var set settings
	for _, o := range opts {
		o(&set)
	}
	var load []func(*config.LoadOptions) error
	if loc.Region != "" {
		load = append(load, config.WithRegion(loc.Region))
	}
	if set.httpClient != nil {
		load = append(load, config.WithHTTPClient(set.httpClient))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("s3store: %s: loading the AWS configuration: %w", loc, err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if loc.Endpoint != "" {
			o.BaseEndpoint = aws.String(loc.Endpoint)
		}
		if loc.PathStyle != nil {
			o.UsePathStyle = *loc.PathStyle
		} else {
			// A server of one's own rarely has a DNS name per bucket.
			o.UsePathStyle = o.BaseEndpoint != nil
		}
		if o.Region == "" && o.BaseEndpoint != nil {
			// S3-compatible servers take any region for the signature;
			// MinIO's default is this one.
			o.Region = "us-east-1"
		}
	})
	opt := client.Options()
	if opt.Region == "" {
		return nil, fmt.Errorf("%w %s: no region: set AWS_REGION, a region in the AWS profile, or add ?region=", ErrLocation, loc)
	}
	if opt.BaseEndpoint != nil {
		e, err := url.Parse(*opt.BaseEndpoint)
		if err != nil || e.Host == "" {
			return nil, fmt.Errorf("%w %s: the S3 endpoint from the environment or the AWS config is not a URL", ErrLocation, loc)
		}
		if e.User != nil {
			return nil, fmt.Errorf("%w %s: the S3 endpoint %s holds credentials: use the AWS environment, a profile or a role", ErrLocation, loc, e.Redacted())
		}
	}
	return newStore(client, loc.Bucket, loc.Key, loc.String()), nil
}

// New returns the store of the lease at key in bucket, reached through a
// client of the caller's own. The store makes its own copy of the client
// with the settings it needs (its own retries, no flexible checksums).
func New(client *s3.Client, bucket, key string) (*Store, error) {
	if bucket == "" || key == "" {
		return nil, fmt.Errorf("%w: s3store.New needs a bucket and a key", ErrLocation)
	}
	loc := &Location{Bucket: bucket, Key: key}
	return newStore(client, bucket, key, loc.String()), nil
}

func newStore(client *s3.Client, bucket, key, name string) *Store {
	return &Store{
		client: s3.New(client.Options(), func(o *s3.Options) {
			// The store retries by itself (retry.go): a retried
			// conditional write must not be taken for a lost one.
			o.Retryer = aws.NopRetryer{}
			o.RetryMaxAttempts = 0
			// Flexible checksums (CRC32 trailers with aws-chunked
			// encoding) are not understood by every S3-compatible
			// server; Swap sends Content-MD5, which all are.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}),
		bucket:  bucket,
		key:     key,
		name:    name,
		probing: make(chan struct{}, 1),
	}
}

// String is the location: s3://BUCKET/KEY and the parameters it was
// opened with (none of which is a secret).
func (s *Store) String() string { return s.name }

// Bucket and Key name the object that holds the lease's record.
func (s *Store) Bucket() string { return s.bucket }

// Key names the object that holds the lease's record.
func (s *Store) Key() string { return s.key }

// epochMeta is the user metadata (x-amz-meta-leaserun-epoch) that every
// Swap writes beside a record: its epoch, which Load returns as the
// Value's Floor. See the package doc.
const epochMeta = "leaserun-epoch"

// rangeHeader asks for no more than a Load may return.
var rangeHeader = "bytes=0-" + strconv.Itoa(lease.MaxRecordSize)

// Load returns the object's current value: its bytes (at most
// lease.MaxRecordSize+1 of them), its ETag without quotes as the revision,
// and the epoch kept in its metadata as the Floor. A missing object is
// Value{}.
func (s *Store) Load(ctx context.Context) (lease.Value, error) {
	return s.get(ctx, s.key)
}

// get is Load of the object at key.
func (s *Store) get(ctx context.Context, key string) (lease.Value, error) {
	var v lease.Value
	err := s.retry(ctx, "GET", func(ctx context.Context) (retryable bool, err error) {
		in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key, Range: &rangeHeader}
		out, err := s.client.GetObject(ctx, in)
		err = short(err)
		if err != nil && (code(err) == "InvalidRange" || status(err) == 416) {
			// S3 answers so for a range of an empty object: ask for all
			// of it (read bounded all the same).
			in.Range = nil
			out, err = s.client.GetObject(ctx, in)
			err = short(err)
		}
		switch {
		case err == nil:
		case code(err) == "NoSuchKey":
			v = lease.Value{}
			return false, nil
		case status(err) == 403:
			return false, fmt.Errorf("%w; S3 also answers so for a key that does not exist yet, to a caller without s3:ListBucket on the bucket", err)
		default:
			return transient(ctx, err), err
		}
		defer out.Body.Close()
		// A server that ignores the range sends all: read no more.
		data, err := io.ReadAll(io.LimitReader(out.Body, lease.MaxRecordSize+1))
		if err != nil {
			return true, err
		}
		rev := unquote(aws.ToString(out.ETag))
		if rev == "" {
			return false, errors.New("the reply has no ETag")
		}
		v = lease.Value{Rev: lease.Revision(rev), Data: data}
		if f, err := strconv.ParseUint(out.Metadata[epochMeta], 10, 64); err == nil {
			v.Floor = f
		}
		return false, nil
	})
	if err != nil {
		return lease.Value{}, err
	}
	return v, nil
}

// Swap writes data as the object's new value if its current value is the
// one at old: with If-None-Match: * when old is zero (create only if
// absent), else with If-Match: "old". Its first call, before anything is
// written, proves that the server enforces those conditions (Verify).
//
// A refused condition (412) is lease.ErrConflict, and so is a conflicting
// request that S3 asks to retry (409), once its retries are spent; a
// missing object answered to an If-Match (404 NoSuchKey) is
// lease.ErrRemoved, since the protocol never deletes it. An attempt whose
// outcome is unknown (a timeout, a lost connection, a 5xx after the
// request went out) is tried again (retry.go), and a write with such an
// attempt is settled by reading the object back: if it holds exactly data,
// the write took effect (every record the protocol writes is unique);
// otherwise, and when the read fails, Swap returns an error other than
// those two, which leaves the outcome unknown: a 412 after such an attempt
// may be this write's own first attempt having landed.
func (s *Store) Swap(ctx context.Context, old lease.Revision, data []byte, _ lease.Write) (lease.Revision, error) {
	if !s.proved.Load() {
		if err := s.Verify(ctx); err != nil {
			return "", err
		}
	}
	var meta map[string]string
	if epoch, ok := recordEpoch(data); ok {
		meta = map[string]string{epochMeta: strconv.FormatUint(epoch, 10)}
	}
	rev, err := s.put(ctx, s.key, string(old), data, "application/json", meta)
	return lease.Revision(rev), err
}

// recordEpoch returns the epoch of the lease record in data, if it is one.
func recordEpoch(data []byte) (uint64, bool) {
	if len(data) == 0 || data[0] != '{' {
		return 0, false
	}
	var r struct {
		Epoch uint64 `json:"epoch"`
	}
	if json.Unmarshal(data, &r) != nil || r.Epoch == 0 {
		return 0, false
	}
	return r.Epoch, true
}

// put writes data at key if the value there is the one at old (none, when
// old is empty), with Swap's outcomes.
func (s *Store) put(ctx context.Context, key, old string, data []byte, contentType string, meta map[string]string) (string, error) {
	sum := md5.Sum(data)
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		ContentLength: aws.Int64(int64(len(data))),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ContentType:   aws.String(contentType),
		Metadata:      meta,
	}
	if old == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(`"` + old + `"`)
	}
	var (
		rev       string
		unsure    error // the first error after which an attempt may have landed
		conflicts int
	)
	err := s.retry(ctx, "PUT", func(ctx context.Context) (bool, error) {
		in.Body = bytes.NewReader(data)
		out, err := s.client.PutObject(ctx, in)
		err = short(err)
		switch {
		case err == nil:
			rev = unquote(aws.ToString(out.ETag))
			if rev == "" {
				return false, errors.New("outcome unknown: the reply has no ETag")
			}
			return false, nil
		case status(err) == 412 || code(err) == "PreconditionFailed":
			if unsure != nil {
				return false, &unsureError{first: unsure, last: err}
			}
			return false, conflictError(err)
		case old != "" && code(err) == "NoSuchKey", old != "" && status(err) == 404 && code(err) != "NoSuchBucket":
			return false, fmt.Errorf("%w (%w)", lease.ErrRemoved, err)
		case status(err) == 409:
			// ConditionalRequestConflict (or OperationAborted): another
			// request on the key got in the way and this one did not take
			// effect. S3 says to retry; if it keeps happening, let the
			// protocol read the object again.
			conflicts++
			if conflicts == maxAttempts {
				return false, conflictError(err)
			}
			return true, err
		case transient(ctx, err):
			if unsure == nil {
				unsure = err
			}
			return true, err
		}
		return false, err
	})
	if err != nil && unsure != nil && ctx.Err() == nil && !errors.Is(err, lease.ErrConflict) && !errors.Is(err, lease.ErrRemoved) {
		// An attempt may have landed: if the object holds exactly data,
		// it did, and nobody wrote after it yet.
		if v, gerr := s.get(ctx, key); gerr == nil && bytes.Equal(v.Data, data) {
			return string(v.Rev), nil
		}
	}
	if err != nil {
		return "", err
	}
	return rev, nil
}

func conflictError(err error) error {
	return fmt.Errorf("%w (%w)", lease.ErrConflict, err)
}

// unsureError is a write whose outcome is unknown because an attempt that
// may have landed was followed by one that found the object changed: the
// change may be the first attempt's.
type unsureError struct{ first, last error }

func (e *unsureError) Error() string {
	return fmt.Sprintf("outcome unknown: an attempt failed (%v), and the next found the object changed (%v), perhaps by the first",
		e.first, e.last)
}

func (e *unsureError) Unwrap() []error { return []error{e.first, e.last} }

// unquote returns an ETag without its quotes.
func unquote(etag string) string {
	if len(etag) >= 2 && etag[0] == '"' && etag[len(etag)-1] == '"' {
		return etag[1 : len(etag)-1]
	}
	return etag
}
