package health

import (
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hangUpMidResponse makes clients that send many pipelined requests and
// close their end without reading: the server's first write of an answer
// makes the client's host answer with a reset, and the writes after it
// fail with EPIPE, which raises SIGPIPE unless the write asked otherwise.
func hangUpMidResponse(t *testing.T, addr string, clients int) {
	t.Helper()
	req := strings.Repeat("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200)
	for range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// sigpipes counts the SIGPIPEs the process catches while f runs, and
// after it until none has come for 300ms (10s at most).
func sigpipes(f func()) int {
	c := make(chan os.Signal, 64)
	signal.Notify(c, syscall.SIGPIPE)
	defer signal.Stop(c)
	f()
	n := 0
	end := time.After(10 * time.Second)
	for {
		select {
		case <-c:
			n++
		case <-time.After(300 * time.Millisecond):
			return n
		case <-end:
			return n
		}
	}
}

// serveMetrics serves a big answer on ln, as /metrics does.
func serveMetrics(t *testing.T, ln net.Listener) {
	body := []byte(strings.Repeat("leaserun_lease_held 1\n", 100))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// A client that hangs up while the health server answers raises no
// SIGPIPE in the process, which would forward it to the child; a plain
// listener, the control, does raise it, so the test can fail. The control
// comes second, so that none of its late SIGPIPEs can count against the
// health server.
func TestHealthServerRaisesNoSIGPIPE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveMetrics(t, noSigpipe(ln))
	got := sigpipes(func() { hangUpMidResponse(t, ln.Addr().String(), 20) })
	// And it still answers.
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveMetrics(t, plain)
	control := sigpipes(func() { hangUpMidResponse(t, plain.Addr().String(), 20) })
	if got != 0 {
		t.Fatalf("%d SIGPIPEs with the health server's listener, want none (the control raised %d)", got, control)
	}
	if control == 0 {
		t.Skip("the control raised no SIGPIPE: this kernel answers a closed peer differently")
	}
	t.Logf("control: %d SIGPIPEs with a plain listener", control)
}
