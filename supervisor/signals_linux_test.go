package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// catchMain catches the signals Run forwards (SIGPIPE too), sends each to
// itself in turn and waits for it, printing its number once it arrives. A
// signal the Go runtime does not let a program catch ends the process
// instead. A SIGURG of the runtime's own, when it is not forwarded, is not
// caught here either.
func catchMain() int {
	c := make(chan os.Signal, 1)
	sigs := forwardedSignals(true)
	signal.Notify(c, sigs...)
	for _, sig := range sigs {
		syscall.Kill(os.Getpid(), sig.(syscall.Signal))
		select {
		case got := <-c:
			if got != sig {
				fmt.Printf("sent %v, caught %v\n", sig, got)
				return 1
			}
			fmt.Printf("%d\n", sig)
		case <-time.After(10 * time.Second):
			fmt.Printf("%v: not caught\n", sig)
			return 1
		}
	}
	return 0
}

// Every signal leaserun claims to forward can in fact be caught: one that
// the Go runtime keeps would end leaserun (and its child) instead. With
// asynchronous preemption off, SIGURG is among them.
func TestForwardedSignalsAreCaught(t *testing.T) {
	for _, godebug := range []string{"", "asyncpreemptoff=1"} {
		t.Run("GODEBUG="+godebug, func(t *testing.T) {
			t.Setenv("GODEBUG", godebug)
			want := forwardedSignals(true)
			if hasURG := slices.Contains(want, os.Signal(syscall.SIGURG)); hasURG != (godebug != "") {
				t.Fatalf("SIGURG forwarded: %v, want %v", hasURG, godebug != "")
			}
			for _, sig := range []syscall.Signal{syscall.SIGPIPE, syscall.SIGABRT, syscall.SIGSEGV, syscall.SIGBUS,
				syscall.SIGFPE, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGSYS} {
				if !slices.Contains(want, os.Signal(sig)) {
					t.Errorf("%v is not forwarded", sig)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "SUPERVISOR_TEST_CATCH=1")
			out, err := cmd.Output()
			var caught []string
			for _, sig := range want {
				caught = append(caught, fmt.Sprint(int(sig.(syscall.Signal))))
			}
			if err != nil || strings.Join(strings.Fields(string(out)), " ") != strings.Join(caught, " ") {
				t.Fatalf("catching the forwarded signals: %v (%v)\nwant %v\ngot  %s", err, cmd.ProcessState, caught, out)
			}
		})
	}
}

// SIGPIPE is forwarded only when asked for.
func TestSIGPIPEForwardedOnlyWhenAsked(t *testing.T) {
	if slices.Contains(forwardedSignals(false), os.Signal(syscall.SIGPIPE)) {
		t.Error("SIGPIPE forwarded without ForwardSIGPIPE")
	}
}

// A second stop does nothing: release ends the one watcher that stop
// started, and every goroutine the catcher made returns.
func TestCatcherStopTwice(t *testing.T) {
	before := goleak.IgnoreCurrent()
	c := catchSignals(false)
	c.wait()
	c.stop()
	c.stop()
	c.release()
	goleak.VerifyNone(t, before)
}
