package fakes3

import (
	"bytes"
	"errors"
	"testing"
)

func TestBackdoor(t *testing.T) {
	srv, err := Start("127.0.0.1:0", "b")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Put("b", "k", []byte("one"), map[string]string{"leaserun-epoch": "7"}); err != nil {
		t.Fatal(err)
	}
	data, meta, err := srv.Get("b", "k")
	if err != nil || string(data) != "one" || meta["leaserun-epoch"] != "7" {
		t.Fatalf("Get = %q %v %v", data, meta, err)
	}
	// A PUT replaces the metadata whole, as S3's does.
	if err := srv.Put("b", "k", []byte("two"), nil); err != nil {
		t.Fatal(err)
	}
	if data, meta, err := srv.Get("b", "k"); err != nil || !bytes.Equal(data, []byte("two")) || len(meta) != 0 {
		t.Fatalf("Get after a PUT without metadata = %q %v %v", data, meta, err)
	}
	if keys, err := srv.Keys("b", "k"); err != nil || len(keys) != 1 || keys[0] != "k" {
		t.Fatalf("Keys = %q %v", keys, err)
	}
	if err := srv.Delete("b", "k"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Get("b", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a deleted object: %v", err)
	}
}
