package main

import (
	"fmt"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/leaserun/leaserun/supervisor"
)

// optDuration is a duration flag whose default depends on other flags: it
// knows whether it was given at all (--grace 0 is not the default).
type optDuration struct {
	d   time.Duration
	set bool
}

func (o *optDuration) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("duration", &s); err != nil {
		return err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("expected a duration like 500ms, 15s or 2m but got %q", s)
	}
	o.d, o.set = d, true
	return nil
}

// signalFlag is a signal given as TERM, SIGTERM or 15.
type signalFlag struct{ sig syscall.Signal }

func (f *signalFlag) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("signal", &s); err != nil {
		return err
	}
	sig, err := supervisor.ParseSignal(s)
	if err != nil {
		return err
	}
	f.sig = sig
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
