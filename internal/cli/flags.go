package cli

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
)

// signalFlag is a signal given as TERM, SIGTERM, term or 15.
type signalFlag struct{ sig syscall.Signal }

func (f *signalFlag) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("signal", &s); err != nil {
		return err
	}
	name := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(name); err == nil {
		f.sig = syscall.Signal(n) // supervisor.Config.Validate checks it
		return nil
	}
	if f.sig = signalNum("SIG" + strings.TrimPrefix(name, "SIG")); f.sig == 0 {
		return fmt.Errorf("%q: no such signal (use a name like TERM or a number like 15)", s)
	}
	return nil
}

// versionFlag prints the version and exits, like kong.VersionFlag, but
// works out the version only when asked.
type versionFlag bool

func (versionFlag) IgnoreDefault() {}

func (versionFlag) BeforeReset(app *kong.Kong) error {
	fmt.Fprintln(app.Stdout, versionString())
	app.Exit(0)
	return nil
}
