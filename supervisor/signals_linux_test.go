package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// catchMain catches the signals Run forwards, sends each to itself in turn
// and waits for it, printing its number once it arrives. A signal the Go
// runtime does not let a program catch ends the process instead.
func catchMain() int {
	c := make(chan os.Signal, 1)
	sigs := forwardedSignals()
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
// the Go runtime keeps would end leaserun (and its child) instead.
func TestForwardedSignalsAreCaught(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SUPERVISOR_TEST_CATCH=1")
	out, err := cmd.Output()
	var caught []string
	for _, sig := range forwardedSignals() {
		caught = append(caught, fmt.Sprint(int(sig.(syscall.Signal))))
	}
	if err != nil || strings.Join(strings.Fields(string(out)), " ") != strings.Join(caught, " ") {
		t.Fatalf("catching the forwarded signals: %v (%v)\nwant %v\ngot  %s", err, cmd.ProcessState, caught, out)
	}
}
