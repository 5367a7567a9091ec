//go:build linux

package pty

import (
	"bytes"
	"io"
	"testing"
)

// What is written to the slave is read from the master.
func TestOpen(t *testing.T) {
	ptm, pts := Open(t)
	if _, err := pts.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	n, err := io.ReadAtLeast(ptm, got, 5)
	if err != nil || !bytes.HasPrefix(got[:n], []byte("hello")) {
		t.Errorf("read %q, %v from the master", got[:n], err)
	}
}
