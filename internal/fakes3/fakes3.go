// Package fakes3 serves an S3-compatible API on loopback for tests: gofakes3
// (github.com/johannesboyne/gofakes3) over its in-memory backend, which
// enforces PutObject's If-None-Match: * and If-Match conditions. Start runs
// one in this process; cmd/fakes3 runs one in a process of its own, for
// tests that stop it (SIGSTOP) or kill it.
//
// One thing is changed from gofakes3's own behaviour to match S3's: a
// PutObject replaces the object's user metadata (x-amz-meta-*) as a whole,
// where gofakes3 keeps the old object's keys that the new request lacks.
// Dropped keys are kept with an empty value, which readers take for none.
package fakes3

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is one fake S3 server.
type Server struct {
	// URL is the server's endpoint: http://127.0.0.1:PORT.
	URL string

	backend *backend
	srv     *http.Server
	ln      net.Listener
}

// Start serves a fake S3 on addr (such as "127.0.0.1:0") with the given
// buckets made. The caller closes it.
func Start(addr string, buckets ...string) (*Server, error) {
	b := &backend{s3mem.New()}
	for _, name := range buckets {
		if err := b.CreateBucket(name); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	faker := gofakes3.New(b, gofakes3.WithLogger(gofakes3.DiscardLog()))
	s := &Server{
		URL:     "http://" + ln.Addr().String(),
		backend: b,
		srv:     &http.Server{Handler: faker.Server()},
		ln:      ln,
	}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server and closes its connections.
func (s *Server) Close() error { return s.srv.Close() }

// Put writes an object by the back door, with no condition and no
// checksum: as a hand edit or another tool would.
func (s *Server) Put(bucket, key string, data []byte, meta map[string]string) error {
	m := map[string]string{}
	for k, v := range meta {
		m[http.CanonicalHeaderKey("X-Amz-Meta-"+k)] = v
	}
	_, err := s.backend.PutObject(bucket, key, m, bytes.NewReader(data), int64(len(data)), nil)
	return err
}

// Get reads an object by the back door: its bytes and user metadata (keys
// without the x-amz-meta- prefix, lower case). A missing object is an
// error wrapping ErrNotFound.
func (s *Server) Get(bucket, key string) ([]byte, map[string]string, error) {
	obj, err := s.backend.GetObject(bucket, key, nil)
	if err != nil {
		if gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
			return nil, nil, errors.Join(ErrNotFound, err)
		}
		return nil, nil, err
	}
	defer obj.Contents.Close()
	data, err := io.ReadAll(obj.Contents)
	if err != nil {
		return nil, nil, err
	}
	meta := map[string]string{}
	for k, v := range obj.Metadata {
		if name, ok := cutFold(k, "X-Amz-Meta-"); ok && v != "" {
			meta[strings.ToLower(name)] = v
		}
	}
	return data, meta, nil
}

// ErrNotFound is wrapped by Get's error for a missing object.
var ErrNotFound = errors.New("fakes3: no such object")

// Delete removes an object by the back door.
func (s *Server) Delete(bucket, key string) error {
	_, err := s.backend.DeleteObject(bucket, key)
	return err
}

// Keys lists the keys in bucket that start with prefix.
func (s *Server) Keys(bucket, prefix string) ([]string, error) {
	p := gofakes3.NewPrefix(&prefix, nil)
	list, err := s.backend.ListBucket(bucket, &p, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, c := range list.Contents {
		keys = append(keys, c.Key)
	}
	return keys, nil
}

// backend is s3mem's, but a PutObject replaces the user metadata whole.
type backend struct{ *s3mem.Backend }

func (b *backend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if meta == nil {
		meta = map[string]string{}
	}
	// s3mem carries the old object's metadata keys that meta lacks over to
	// the new object: blank them.
	if old, err := b.HeadObject(bucket, key); err == nil {
		for k := range old.Metadata {
			if _, ok := cutFold(k, "X-Amz-Meta-"); ok {
				if _, set := meta[k]; !set {
					meta[k] = ""
				}
			}
		}
	}
	return b.Backend.PutObject(bucket, key, meta, input, size, conditions)
}

func cutFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}
