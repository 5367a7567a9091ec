package s3store

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/leaserun/leaserun/lease"
)

// ErrNotEnforced is wrapped by the error of Verify, and of the first Swap,
// when the server does not enforce conditional writes: a create with
// If-None-Match: * of an object that exists, or a replace with If-Match
// at an ETag that is not the object's, took effect (the server, or a
// proxy before it, ignores the conditions, and would give the lease to
// two holders at once); or the server refused them as not implemented,
// or refused a replace at the object's own ETag. leaserun exits 74 with
// its message.
var ErrNotEnforced = errors.New("the store does not enforce conditional writes")

// Verify proves, once per Store, that the server enforces the conditions
// that Swap rests on, by writing a probe object beside the lease's,
// KEY.probe-UUID:
//
//  1. create it with If-None-Match: *, which must succeed;
//  2. create it again so, which must fail with 412;
//  3. replace it with If-Match at a wrong ETag, which must fail with 412;
//  4. replace it with If-Match at its ETag, which must succeed;
//
// and then deleting it. A delete that fails (no s3:DeleteObject) leaves
// the probe object behind, and Verify succeeds all the same. Swap calls
// Verify before its first write; a caller may call it earlier, so that
// the probe's requests do not count against an acquisition's TTL. Once it
// succeeded it returns nil at once; once it found the conditions not
// enforced, it returns that error again.
func (s *Store) Verify(ctx context.Context) error {
	if s.proved.Load() {
		return nil
	}
	select {
	case s.probing <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("s3store: %s: proving that the store enforces conditional writes: %w", s.name, ctx.Err())
	}
	defer func() { <-s.probing }()
	if s.proved.Load() {
		return nil
	}
	if p := s.refused.Load(); p != nil {
		return *p
	}
	err := s.probe(ctx)
	switch {
	case err == nil:
		s.proved.Store(true)
	case errors.Is(err, ErrNotEnforced):
		s.refused.Store(&err)
	}
	return err
}

// probe runs Verify's steps.
func (s *Store) probe(ctx context.Context) (err error) {
	id := uuid.NewString()
	key := s.key + ".probe-" + id
	body := func(step int) []byte { return fmt.Appendf(nil, "leaserun probe %s step %d\n", id, step) }
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("s3store: %s: %w: %s", s.name, ErrNotEnforced, fmt.Sprintf(format, args...))
	}
	failed := func(err error) error {
		return fmt.Errorf("s3store: %s: proving that the store enforces conditional writes: %w", s.name, err)
	}
	put := func(step int, old string) (string, error) {
		return s.put(ctx, key, old, body(step), "text/plain", nil)
	}

	etag, err := put(1, "")
	defer func() {
		// Whatever happened, the probe object may exist: remove it if the
		// context leaves time (a probe object that stays is harmless).
		if ctx.Err() == nil {
			_, _ = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
		}
	}()
	switch {
	case err == nil:
	case code(err) == "NotImplemented" || status(err) == 501:
		return refuse("a create with If-None-Match: * was refused as not implemented (%v)", err)
	case errors.Is(err, lease.ErrConflict):
		return failed(fmt.Errorf("the new probe object %s exists already (%w)", key, err))
	default:
		return failed(err)
	}

	switch _, err := put(2, ""); {
	case err == nil:
		return refuse("a create with If-None-Match: * replaced the object that existed (%s)", key)
	case !errors.Is(err, lease.ErrConflict):
		return failed(err)
	}

	wrong := md5.Sum(body(3))
	switch _, err := put(3, hex.EncodeToString(wrong[:])); {
	case err == nil:
		return refuse("a replace with If-Match at an ETag that was not the object's took effect (%s)", key)
	case code(err) == "NotImplemented" || status(err) == 501:
		return refuse("a replace with If-Match was refused as not implemented (%v)", err)
	case !errors.Is(err, lease.ErrConflict):
		return failed(err)
	}

	switch next, err := put(4, etag); {
	case errors.Is(err, lease.ErrConflict), errors.Is(err, lease.ErrRemoved):
		return refuse("a replace with If-Match at the object's own ETag %q was refused (%v): no renewal could succeed", etag, err)
	case err != nil:
		return failed(err)
	case next == etag:
		return failed(fmt.Errorf("a replace of %s by other bytes left its ETag %q as it was", key, etag))
	}
	return nil
}
