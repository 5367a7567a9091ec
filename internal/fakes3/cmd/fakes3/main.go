// Command fakes3 serves a fake S3 (package internal/fakes3) on loopback
// until it gets SIGTERM or SIGINT, for tests that need
// the server in a process of its own: one they can stop with SIGSTOP, or
// kill.
//
//	fakes3 [-addr 127.0.0.1:0] [-bucket NAME]...
//
// A test that starts it should also have it killed when the test dies
// (on Linux, SysProcAttr.Pdeathsig). It prints its endpoint, http://127.0.0.1:PORT, as its first line on
// standard output once it listens.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/leaserun/leaserun/internal/fakes3"
)

type buckets []string

func (b *buckets) String() string     { return strings.Join(*b, ",") }
func (b *buckets) Set(s string) error { *b = append(*b, s); return nil }

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	var bs buckets
	flag.Var(&bs, "bucket", "a bucket to make (repeatable)")
	flag.Parse()
	srv, err := fakes3.Start(*addr, bs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakes3:", err)
		os.Exit(1)
	}
	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGTERM, os.Interrupt)
	fmt.Println(srv.URL)
	<-done
	srv.Close()
}
