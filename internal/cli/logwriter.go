package cli

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// logWriter hands leaserun's log lines to stderr from a goroutine of its
// own. A stderr that blocks (a full pipe nobody reads, a stalled journald)
// must never delay what leaserun does on time, above all stopping the child
// before the lease lapses; so Write never blocks: a line that finds the
// buffer full is dropped, and the number dropped is reported at Close.
//
// Nor may a stderr that fails end leaserun: a line that can't be written
// (a pipe whose reader is gone, as with "leaserun ... 2>&1 | head") is
// dropped. The Go runtime ends a program whose write to descriptor 2 fails
// with EPIPE by SIGPIPE, and the kernel raises SIGPIPE for the write too;
// so the goroutine writes to a duplicate of the descriptor, from a thread
// that blocks SIGPIPE where the platform allows (see quietFile): leaserun
// forwards the SIGPIPEs it catches to the child, and one raised by its own
// write must not look like one that was sent to it.
//
// The goroutine, and the thread it takes, start with the first line: a run
// at the default level that goes well writes none, and starts neither.
type logWriter struct {
	out     io.Writer
	start   sync.Once // starts run, or at Close, marks it done
	done    chan struct{}
	dropped atomic.Int64

	mu     sync.RWMutex // Close excludes Write
	lines  chan []byte
	closed bool
}

// logBuffer is how many lines may wait for a slow stderr.
const logBuffer = 256

func newLogWriter(out io.Writer) *logWriter {
	return &logWriter{lines: make(chan []byte, logBuffer), done: make(chan struct{}), out: out}
}

func (w *logWriter) run() {
	defer close(w.done)
	out := w.out
	if f, ok := out.(*os.File); ok {
		q := quietFile(f)
		defer q.Close()
		out = q
	}
	for line := range w.lines {
		out.Write(line) // a line that fails is dropped
	}
}

// Write queues one line; slog writes each record with one call.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return len(p), nil // a straggler after the exit status was decided
	}
	w.start.Do(func() { go w.run() })
	select {
	case w.lines <- bytes.Clone(p):
	default:
		w.dropped.Add(1)
	}
	return len(p), nil
}

// Close writes what is queued, waiting at most timeout for a stuck stderr:
// leaserun then exits without its last lines rather than hang.
func (w *logWriter) Close(timeout time.Duration) {
	w.mu.Lock()
	if n := w.dropped.Load(); n > 0 {
		select {
		case w.lines <- []byte("leaserun: " + strconv.FormatInt(n, 10) + " log lines dropped: stderr was not being read\n"):
		default:
		}
	}
	w.closed = true
	close(w.lines)
	w.mu.Unlock()
	w.start.Do(func() { close(w.done) }) // no line was written: nothing runs
	select {
	case <-w.done:
	case <-time.After(timeout):
	}
}

// nopCloser is a writer whose Close does nothing: os.Stderr itself stays open.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
