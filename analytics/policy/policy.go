// Package policy is patchgrid's remediation policy as code: SLA days per
// severity (with the KEV dueDate and EPSS escalation rules), asset groups by
// label selectors, maintenance windows and change freezes per group, ring
// order with gates, blast radius per wave, and the emergency path.
//
// A policy is a YAML file (see testdata/sample.yaml and README.md's
// "Remediation plans"). Parse checks it whole and names the file, line and
// field of the first problem; nothing is stored unless the whole file is
// valid. Apply (store.go) keeps every version in ClickHouse, records which
// one is active, by whom and when, and writes the active policy's SLA days
// into sla_policy (policy 'default'), so the SLA views and the planner
// read one source.
//
// The scheduling primitives the planner needs (the next window of a group
// outside freezes, the blast-radius cap of a group) live here too, so
// their meaning is defined once, next to the policy that states them.
package policy

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/patchgrid/patchgrid/schemas/yamlsafe"
)

// defaultSLADays holds the days of the two severities a policy may leave
// out (advisories without a rating): the migration's defaults.
var defaultSLADays = map[string]uint32{"none": 365}

// Bypass names what the emergency path may skip.
const (
	BypassWindows = "windows"
	BypassFreezes = "freezes"
	BypassSoak    = "soak"
)

// Policy is one parsed, valid policy. Its JSON form (Canonical) is what is
// stored and compared: field names match the YAML keys.
type Policy struct {
	Name        string      `json:"name"`
	SLA         SLA         `json:"sla"`
	Groups      []Group     `json:"groups,omitempty"`
	Freezes     []Freeze    `json:"freezes,omitempty"`
	Rings       []Ring      `json:"rings,omitempty"`
	BlastRadius BlastRadius `json:"blast_radius,omitzero"`
	Emergency   Emergency   `json:"emergency"`
	// Exceptions (issue 14): the cap on risk acceptances.
	Exceptions Exceptions `json:"exceptions,omitzero"`
	// Deployment (issue 13): verification and retries of plan actions.
	Deployment Deployment `json:"deployment,omitzero"`
}

// Deployment is what the policy says about deploying plan actions
// (analytics/deploy). Zero fields take the defaults below; the view
// plan_deploy_settings (0014_deploy.sql) reads them from the canonical
// JSON with the same defaults.
type Deployment struct {
	// VerificationWindow: a successful action whose host is not rescanned
	// within it is unverified.
	VerificationWindow Duration `json:"verification_window,omitzero"`
	// MaxAttempts: a failed action is due again in its group's next window
	// until this many attempts have failed.
	MaxAttempts uint32 `json:"max_attempts,omitzero"`
}

// Defaults of Deployment's fields.
const (
	DefaultVerificationWindow = 24 * time.Hour
	DefaultMaxAttempts        = 3
)

// Window is the verification window in force.
func (d Deployment) Window() time.Duration {
	if d.VerificationWindow > 0 {
		return time.Duration(d.VerificationWindow)
	}
	return DefaultVerificationWindow
}

// Attempts is the maximum number of attempts in force.
func (d Deployment) Attempts() uint32 {
	if d.MaxAttempts > 0 {
		return d.MaxAttempts
	}
	return DefaultMaxAttempts
}

// Exceptions is what the policy says about exceptions (risk acceptance).
type Exceptions struct {
	// MaxDuration caps an exception's lifetime from its request; zero
	// leaves the exception book's default (90 days).
	MaxDuration Duration `json:"max_duration,omitzero"`
}

// SLA is the remediation clock.
type SLA struct {
	// Days per severity, every severity of severity.All present.
	Days map[string]uint32 `json:"days"`
	// KEVDueDate: for an advisory in CISA KEV, its dueDate is the deadline
	// when it is sooner than the severity's.
	KEVDueDate bool `json:"kev_due_date"`
	// EPSSEscalation, when set, shortens the deadline of findings with
	// EPSS >= Threshold to at most Days after the clock start.
	EPSSEscalation *EPSSEscalation `json:"epss_escalation,omitempty"`
}

// EPSSEscalation: EPSS >= Threshold ⇒ deadline at most Days.
type EPSSEscalation struct {
	Threshold float64 `json:"threshold"`
	Days      uint32  `json:"days"`
}

// Selector picks hosts by the labels of their latest scan. An empty field
// does not constrain; Tags must all be present.
type Selector struct {
	Ring           string   `json:"ring,omitempty"`
	Owner          string   `json:"owner,omitempty"`
	OS             string   `json:"os,omitempty"`
	Criticality    *int     `json:"criticality,omitempty"`
	InternetFacing *bool    `json:"internet_facing,omitempty"`
	Hostname       string   `json:"hostname,omitempty"` // glob: * and ?
	Tags           []string `json:"tags,omitempty"`
}

// Host is what a selector sees of a host.
type Host struct {
	ID, Hostname, Ring, Owner, OS string
	Criticality                   int
	InternetFacing                bool
	Tags                          []string
}

// Matches reports whether h satisfies every label of s.
func (s Selector) Matches(h Host) bool {
	switch {
	case s.Ring != "" && s.Ring != h.Ring,
		s.Owner != "" && s.Owner != h.Owner,
		s.OS != "" && s.OS != h.OS,
		s.Criticality != nil && *s.Criticality != h.Criticality,
		s.InternetFacing != nil && *s.InternetFacing != h.InternetFacing:
		return false
	}
	if s.Hostname != "" {
		if ok, _ := path.Match(s.Hostname, h.Hostname); !ok {
			return false
		}
	}
	for _, t := range s.Tags {
		if !slices.Contains(h.Tags, t) {
			return false
		}
	}
	return true
}

// UsesTags reports whether a selector of p needs host tags (the planner
// reads them only then).
func (p *Policy) UsesTags() bool {
	for _, g := range p.Groups {
		if len(g.Select.Tags) > 0 {
			return true
		}
	}
	return false
}

// Group is a set of hosts with its windows and blast radius.
type Group struct {
	Name    string   `json:"name"`
	Select  Selector `json:"select"`
	Windows []Window `json:"windows,omitempty"`
	// BlastRadius overrides the policy's for this group.
	BlastRadius *BlastRadius `json:"blast_radius,omitempty"`
}

// Window is a weekly maintenance window: on each of Days, from Start
// (wall clock in TimeZone) for Duration of elapsed time.
type Window struct {
	Days     []string `json:"days"`  // mon..sun
	Start    string   `json:"start"` // HH:MM
	Duration Duration `json:"duration"`
	TimeZone string   `json:"timezone"`

	loc          *time.Location
	weekdays     [7]bool
	hour, minute int
}

// Freeze is a change freeze: no window that overlaps [From, To] (whole
// days in TimeZone, To inclusive) is used for the groups it names (every
// group when Groups is empty).
type Freeze struct {
	Name     string   `json:"name"`
	From     string   `json:"from"` // YYYY-MM-DD
	To       string   `json:"to"`   // YYYY-MM-DD, inclusive
	TimeZone string   `json:"timezone"`
	Groups   []string `json:"groups,omitempty"`

	start, end time.Time // [start, end)
}

// Ring is one step of the ring order, with the gate that must hold before
// the next ring starts.
type Ring struct {
	Name string `json:"name"`
	Gate Gate   `json:"gate"`
}

// Gate: the next ring opens once this ring has soaked MinSoak after its
// last wave, with a failure rate at most MaxFailureRate and at least
// MinSuccesses successful actions. The plan schedules MinSoak; the rates
// are checked when outcomes arrive (deployment verification).
type Gate struct {
	MinSoak        Duration `json:"min_soak"`
	MaxFailureRate float64  `json:"max_failure_rate"`
	MinSuccesses   uint32   `json:"min_successes"`
}

// BlastRadius caps the hosts of one group in one wave (the hosts that
// change in one slot, an occurrence of their windows): at most Percent of
// the group's hosts in the ring (rounded down, at least 1) and at most
// Hosts; zero fields do not cap.
type BlastRadius struct {
	Percent float64 `json:"percent,omitempty"`
	Hosts   uint32  `json:"hosts,omitempty"`
}

// Cap is the most hosts of a group of n hosts one wave may hold (n when
// nothing caps).
func (b BlastRadius) Cap(n int) int {
	c := n
	if b.Percent > 0 {
		c = min(c, max(1, int(float64(n)*b.Percent/100)))
	}
	if b.Hosts > 0 {
		c = min(c, int(b.Hosts))
	}
	return max(c, 1)
}

// Emergency is the emergency path.
type Emergency struct {
	// KEV: an advisory in CISA KEV qualifies.
	KEV bool `json:"kev"`
	// CriticalEPSS: a critical advisory with EPSS >= this qualifies (nil:
	// not by EPSS).
	CriticalEPSS *float64 `json:"critical_epss,omitempty"`
	// InternetFacing: a critical or high advisory on an internet-facing
	// host qualifies.
	InternetFacing bool `json:"internet_facing"`
	// Bypass lists what emergency actions skip: windows, freezes, soak.
	Bypass []string `json:"bypass,omitempty"`
	// Window is how long an emergency action's slot lasts when it
	// bypasses windows. Default 4h.
	Window Duration `json:"window,omitzero"`
	// ApprovalRequired marks emergency actions as needing approval before
	// automation runs them.
	ApprovalRequired bool `json:"approval_required"`
}

// Bypasses reports whether the emergency path skips what (a Bypass* name).
func (e Emergency) Bypasses(what string) bool { return slices.Contains(e.Bypass, what) }

// Qualifies reports whether a finding takes the emergency path, and why.
func (e Emergency) Qualifies(kev bool, severity string, epss float64, hasEPSS, internetFacing bool) (bool, string) {
	switch {
	case e.KEV && kev:
		return true, "KEV"
	case e.CriticalEPSS != nil && severity == "critical" && hasEPSS && epss >= *e.CriticalEPSS:
		// The threshold, not the score: the planner states this reason in
		// SQL too (analytics/plan), and both must read the same.
		return true, fmt.Sprintf("critical with EPSS >= %.2f", *e.CriticalEPSS)
	case e.InternetFacing && internetFacing && (severity == "critical" || severity == "high"):
		return true, severity + " on an internet-facing host"
	}
	return false, ""
}

// Duration is a time.Duration written as "4h", "30m", "2d" or "1w".
type Duration time.Duration

// MarshalText writes the duration as Go does ("4h0m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText writes (and ParseDuration accepts).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// ParseDuration accepts Go durations plus whole days (d) and weeks (w).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		v, err := strconv.ParseUint(s[:n-1], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want e.g. 4h, 90m, 2d or 1w", s)
		}
		unit := 24 * time.Hour
		if s[n-1] == 'w' {
			unit *= 7
		}
		return time.Duration(v) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("duration %q: want e.g. 4h, 90m, 2d or 1w", s)
	}
	return d, nil
}

// ParseSpan is ParseDuration for spans that must be positive: an expiry, a
// horizon, a report period, a token's lifetime. The one parser of spans
// people type, so "30d" means the same in every command and endpoint.
func ParseSpan(s string) (time.Duration, error) {
	d, err := ParseDuration(s)
	if err == nil && d <= 0 {
		err = fmt.Errorf("duration %q: must be more than zero", s)
	}
	return d, err
}

// Error is a rejected policy: the file, line and field of the problem.
type Error struct {
	File  string
	Line  int
	Field string // dotted path, e.g. groups[1].windows[0].timezone
	Msg   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// ErrInvalid is wrapped by every rejection of policy input: a retry cannot
// help, the file must change.
var ErrInvalid = errors.New("invalid policy")

func (e *Error) Unwrap() error { return ErrInvalid }

// Parse reads a policy file's content. file names it in errors.
func Parse(file string, data []byte) (*Policy, error) {
	root, err := yamlsafe.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", file, ErrInvalid, err)
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d := &decoder{file: file}
	p := d.policy(root)
	if d.err != nil {
		return nil, d.err
	}
	return p, nil
}
