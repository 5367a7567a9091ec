package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"text/template"
	"time"

	"github.com/alecthomas/kong"

	"github.com/leaserun/leaserun/lease"
)

// statusCmd is "leaserun status".
type statusCmd struct {
	Lease     string        `short:"l" required:"" env:"LEASERUN_LEASE" placeholder:"PATH" help:"The lease: a file path or a URL."`
	ClockSkew time.Duration `default:"0" env:"LEASERUN_CLOCK_SKEW" placeholder:"DURATION" help:"Most the hosts' clocks may differ by."`
	Format    string        `placeholder:"TEMPLATE" help:"Go template over the record, e.g. {{.Epoch}}."`

	tmpl *template.Template
}

// Validate checks the flags, and parses the template.
func (s *statusCmd) Validate() error {
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

// statusView is what status prints: the record, its expiry and the state,
// and whether the lease's versions were removed by hand (lease.Status).
type statusView struct {
	lease.Record
	ExpiresAt       time.Time
	State           lease.State
	VersionsRemoved bool
}

func (v statusView) MarshalJSON() ([]byte, error) {
	if v.State == lease.StateFree {
		return json.Marshal(struct {
			State           lease.State `json:"state"`
			VersionsRemoved bool        `json:"versions_removed,omitempty"`
		}{v.State, v.VersionsRemoved})
	}
	return json.Marshal(struct {
		lease.Record
		ExpiresAt       time.Time   `json:"expires_at"`
		State           lease.State `json:"state"`
		VersionsRemoved bool        `json:"versions_removed,omitempty"`
	}{v.Record, v.ExpiresAt, v.State, v.VersionsRemoved})
}

// Run prints the lease's status, and ends leaserun with 0 when it is held
// by a live holder, 1 otherwise, 74 on an I/O error or for a lease that no
// run could acquire (lease.ErrExhausted), as a run would exit.
func (s *statusCmd) Run(kctx *kong.Context, ls *leases) error {
	store, _, err := ls.open(context.Background(), s.Lease)
	if err != nil {
		return leaseError(kctx.Stderr, err)
	}
	st, err := lease.ReadStore(context.Background(), store, lease.WithClockSkew(s.ClockSkew))
	if err != nil {
		fmt.Fprintf(kctx.Stderr, "leaserun: error: lease %s: %v\n", s.Lease, err)
		return exitStatus(exitIO)
	}
	v := statusView{State: st.State, VersionsRemoved: st.VersionsRemoved}
	if st.Record != nil {
		v.Record, v.ExpiresAt = *st.Record, st.Record.ExpiresAt()
	}
	if p := st.Published; st.VersionsRemoved && p != nil {
		fmt.Fprintf(kctx.Stderr, "leaserun: lease %s: its versions (%s.d) were removed or replaced by hand: %s still shows %s (epoch %d), which no version holds\n",
			s.Lease, s.Lease, s.Lease, p.InstanceID, p.Epoch)
	}
	var out bytes.Buffer
	if s.tmpl != nil {
		if err := s.tmpl.Execute(&out, v); err != nil {
			return usageErrorf("--format: %v", err)
		}
		out.WriteByte('\n')
	} else {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		out.Write(append(b, '\n'))
	}
	kctx.Stdout.Write(out.Bytes())
	if st.State != lease.StateHeld {
		return exitStatus(1)
	}
	return nil
}
