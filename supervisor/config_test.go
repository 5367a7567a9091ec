package supervisor

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestNewConfig(t *testing.T) {
	c := NewConfig("p", 15*time.Second)
	want := Config{Path: "p", TTL: 15 * time.Second, RenewInterval: 5 * time.Second,
		Grace: 5 * time.Second, Margin: 1500 * time.Millisecond}
	if c.Path != want.Path || c.TTL != want.TTL || c.RenewInterval != want.RenewInterval ||
		c.Grace != want.Grace || c.Margin != want.Margin {
		t.Errorf("NewConfig: got %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if short := NewConfig("p", 100*time.Millisecond); short.Margin != minMargin {
		t.Errorf("margin for a 100ms ttl = %v, want %v", short.Margin, minMargin)
	}
}

func TestConfigValidate(t *testing.T) {
	d := NewConfig("p", 15*time.Second)
	with := func(f func(*Config)) Config {
		c := d
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // the error's; "" when valid
	}{
		{"no path", with(func(c *Config) { c.Path = "" }), "Path"},
		{"no ttl", with(func(c *Config) { c.TTL = 0 }), "TTL"},
		{"negative ttl", with(func(c *Config) { c.TTL = -time.Second }), "TTL"},
		{"no renew", with(func(c *Config) { c.RenewInterval = 0 }), "RenewInterval"},
		{"renew = ttl", with(func(c *Config) { c.RenewInterval = c.TTL }), "RenewInterval"},
		{"renew > ttl", with(func(c *Config) { c.RenewInterval = time.Minute }), "RenewInterval"},
		{"negative grace", with(func(c *Config) { c.Grace = -1 }), "Grace"},
		{"no grace", with(func(c *Config) { c.Grace = 0 }), ""},
		{"grace too long", with(func(c *Config) { c.Grace = 10 * time.Second }), "Grace"},
		{"renew + grace too long", with(func(c *Config) { c.RenewInterval = 9 * time.Second }), "Grace"},
		{"ttl too short for the defaults", NewConfig("p", 60*time.Millisecond), "TTL"},
		{"ttl long enough for the defaults", NewConfig("p", 61*time.Millisecond), ""},
		{"no margin", with(func(c *Config) { c.Margin = 0 }), "Margin"},
		{"negative wait timeout", with(func(c *Config) { c.WaitTimeout = -1 }), "WaitTimeout"},
		{"not a signal", with(func(c *Config) { c.StopSignal = syscall.Signal(0) }), "StopSignal"},
		{"no such signal", with(func(c *Config) { c.StopSignal = syscall.Signal(99) }), "StopSignal"},
		{"a signal", with(func(c *Config) { c.StopSignal = syscall.SIGINT }), ""},
		{"empty meta key", with(func(c *Config) { c.Meta = map[string]string{"": "x"} }), "Meta"},
		{"long grace fits", with(func(c *Config) { c.TTL, c.RenewInterval, c.Grace = 10*time.Second, time.Second, 7*time.Second }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var ce *ConfigError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field):
				t.Fatalf("got %v, want an error about %s", err, tc.field)
			}
		})
	}
}
