package supervisor

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{Path: "p"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{Path: "p", TTL: 15 * time.Second, RenewInterval: 5 * time.Second,
		Grace: 5 * time.Second, Margin: 1500 * time.Millisecond, StopSignal: syscall.SIGTERM}
	if c.TTL != want.TTL || c.RenewInterval != want.RenewInterval || c.Grace != want.Grace ||
		c.Margin != want.Margin || c.StopSignal != want.StopSignal || c.Logger == nil {
		t.Errorf("defaults: got %+v, want %+v", c, want)
	}

	short := Config{Path: "p", TTL: 100 * time.Millisecond}
	if err := short.Validate(); err != nil {
		t.Fatal(err)
	}
	if short.Margin != MinMargin {
		t.Errorf("margin for a 100ms ttl = %v, want %v", short.Margin, MinMargin)
	}

	none := Config{Path: "p", Grace: NoGrace}
	if err := none.Validate(); err != nil || none.grace() != 0 {
		t.Errorf("NoGrace: %v, grace %v", err, none.grace())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		flag string // the error's; "" when valid, "-" for none
	}{
		{"no path", Config{}, "--lease"},
		{"negative ttl", Config{Path: "p", TTL: -time.Second}, "--ttl"},
		{"negative renew", Config{Path: "p", RenewInterval: -1}, "--renew"},
		{"renew = ttl", Config{Path: "p", TTL: time.Second, RenewInterval: time.Second}, "--renew"},
		{"renew > ttl", Config{Path: "p", RenewInterval: time.Minute}, "--renew"},
		{"grace too long", Config{Path: "p", Grace: 10 * time.Second}, "--grace"},
		{"renew + grace too long", Config{Path: "p", RenewInterval: 9 * time.Second}, "--grace"},
		{"ttl too short for the defaults", Config{Path: "p", TTL: 60 * time.Millisecond}, "--ttl"},
		{"ttl long enough for the defaults", Config{Path: "p", TTL: 61 * time.Millisecond}, ""},
		{"negative wait timeout", Config{Path: "p", WaitTimeout: -1}, "--wait-timeout"},
		{"not a signal", Config{Path: "p", StopSignal: syscall.Signal(0)}, "--stop-signal"},
		{"empty meta key", Config{Path: "p", Meta: map[string]string{"": "x"}}, "--meta"},
		{"negative margin", Config{Path: "p", Margin: -1}, "-"}, // no flag sets it
		{"long grace fits", Config{Path: "p", TTL: 10 * time.Second, RenewInterval: time.Second, Grace: 7 * time.Second}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.flag == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUsage) || ExitCode(err) != ExitUsage {
				t.Fatalf("got %v (status %d), want a usage error", err, ExitCode(err))
			}
			var ue *UsageError
			if !errors.As(err, &ue) || "--"+ue.Flag != tc.flag && !(tc.flag == "-" && ue.Flag == "") {
				t.Errorf("%q: want a usage error about %s", err, tc.flag)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	for _, s := range []string{"TERM", "SIGTERM", "term", "sigterm", "15", " TERM "} {
		if sig, err := ParseSignal(s); err != nil || sig != syscall.SIGTERM {
			t.Errorf("ParseSignal(%q) = %v, %v", s, sig, err)
		}
	}
	for _, s := range []string{"", "FOO", "SIG", "0", "-1", "1000", "TERM2"} {
		if sig, err := ParseSignal(s); err == nil {
			t.Errorf("ParseSignal(%q) = %v, want an error", s, sig)
		}
	}
}
