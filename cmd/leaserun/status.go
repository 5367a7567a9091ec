package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/template"
	"time"

	"github.com/leaserun/leaserun/lease"
)

// statusCmd is "leaserun status".
type statusCmd struct {
	Lease     string        `name:"lease" short:"l" required:"" env:"LEASERUN_LEASE" placeholder:"PATH" help:"The lease file."`
	ClockSkew time.Duration `name:"clock-skew" default:"0" env:"LEASERUN_CLOCK_SKEW" placeholder:"DURATION" help:"How far apart the clocks of the hosts sharing the lease may be: a record counts as held until its expires_at plus this. 0 by default."`
	Format    string        `name:"format" placeholder:"TEMPLATE" help:"Go template over the record instead of JSON, e.g. '{{.Meta.endpoint}}'; fields as in the record (.InstanceID, .PID, .Host, .AcquiredAt, .RenewedAt, .TTL, .Meta, .Epoch) and .ExpiresAt, .State."`

	tmpl *template.Template
}

func (s *statusCmd) validate() error {
	if s.Lease == "" {
		return usageErrorf("--lease: the lease path is required")
	}
	if s.ClockSkew < 0 {
		return usageErrorf("--clock-skew: %v: must not be negative", s.ClockSkew)
	}
	if s.Format == "" {
		return nil
	}
	t, err := template.New("format").Option("missingkey=zero").Parse(s.Format)
	if err != nil {
		return usageErrorf("--format: %v", err)
	}
	s.tmpl = t
	return nil
}

// statusView is what status prints: the record, its expiry and the state.
type statusView struct {
	lease.Record
	ExpiresAt time.Time
	State     lease.State
}

func (v statusView) MarshalJSON() ([]byte, error) {
	if v.State == lease.StateFree {
		return json.Marshal(struct {
			State lease.State `json:"state"`
		}{v.State})
	}
	return json.Marshal(struct {
		lease.Record
		ExpiresAt time.Time   `json:"expires_at"`
		State     lease.State `json:"state"`
	}{v.Record, v.ExpiresAt, v.State})
}

// run prints the lease's status: exit 0 when held by a live holder, 1
// otherwise, 74 on an I/O error or for a lease that no run could acquire
// (lease.ErrExhausted), as a run would exit.
func (s *statusCmd) run(stdout, stderr io.Writer) int {
	st, err := lease.Read(s.Lease, lease.WithClockSkew(s.ClockSkew))
	if err != nil {
		fmt.Fprintf(stderr, "leaserun: error: lease %s: %v\n", s.Lease, err)
		return exitIO
	}
	v := statusView{State: st.State}
	if st.Record != nil {
		v.Record, v.ExpiresAt = *st.Record, st.Record.ExpiresAt()
	}
	var out bytes.Buffer
	if s.tmpl != nil {
		if err := s.tmpl.Execute(&out, v); err != nil {
			fmt.Fprintf(stderr, "leaserun: error: --format: %v\n", err)
			return exitUsage
		}
		out.WriteByte('\n')
	} else {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "leaserun: error: %v\n", err)
			return 1
		}
		out.Write(append(b, '\n'))
	}
	stdout.Write(out.Bytes())
	if st.State == lease.StateHeld {
		return 0
	}
	return 1
}
