package supervisor

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// ParseSignal parses a signal given as a name with or without the SIG
// prefix, in any case, or as a number: TERM, SIGTERM, term and 15 are all
// SIGTERM.
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(name); err == nil {
		if n <= 0 || syscall.Signal(n) > maxSignal {
			return 0, fmt.Errorf("%q: no such signal", s)
		}
		return syscall.Signal(n), nil
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := signalByName(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%q: no such signal (use a name like TERM or a number like 15)", s)
}
