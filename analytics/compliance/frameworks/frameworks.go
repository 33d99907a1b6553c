// Package frameworks holds the compliance frameworks patchgrid ships as
// presets (presets/*.yaml, each citing its source) and reads the compliance
// posture under each.
//
// A framework is a named SLA policy plus a scope: its deadlines are rows of
// sla_policy, so every SLA view (kpi_exposure_sla, kpi_sla_compliance,
// kpi_patch_coverage) computes them like any policy, and its scope ("all"
// exposures, or "kev": advisories in CISA KEV only) is applied by the
// posture views. Migration 0019_posture.sql loads the presets into
// compliance_frameworks and sla_policy, so they are present on every store
// after migrate; TestMigrationLoadsThePresets holds those rows to the
// files here, which are the documented source.
package frameworks

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Scopes a framework may judge.
const (
	ScopeAll = "all" // every exposure
	ScopeKEV = "kev" // advisories in CISA KEV only
)

// InternalPolicy is the sla_policy policy of the active remediation policy:
// the internal SLA's, written by `patchgrid policy apply`.
const InternalPolicy = "default"

// Framework is one preset.
type Framework struct {
	ID     string `yaml:"framework"`
	Title  string `yaml:"title"`
	Source string `yaml:"source"`
	// Policy names its sla_policy rows.
	Policy string `yaml:"policy"`
	Scope  string `yaml:"scope"`
	// SLA is the deadline rule the preset installs as sla_policy rows of
	// Policy; nil for the internal SLA, whose rows are the active policy's.
	SLA *SLA `yaml:"sla"`
}

// SLA is a preset's days per severity and KEV rule.
type SLA struct {
	Days       map[string]uint32 `yaml:"days"`
	KEVDueDate bool              `yaml:"kev_due_date"`
}

//go:embed presets/*.yaml
var presetFS embed.FS

// ErrInvalid marks a preset file that does not describe a framework.
var ErrInvalid = errors.New("invalid framework preset")

// Presets parses the shipped presets, ordered by id.
func Presets() ([]Framework, error) {
	files, err := fs.Glob(presetFS, "presets/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("framework presets: %w", err)
	}
	var out []Framework
	for _, name := range files {
		b, err := presetFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("framework preset %s: %w", name, err)
		}
		f, err := Parse(path.Base(name), b)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// PresetSource is the file of the preset id as shipped (comments citing
// the source included); false when there is no such preset.
func PresetSource(id string) ([]byte, bool) {
	b, err := presetFS.ReadFile("presets/" + id + ".yaml")
	return b, err == nil
}

// Parse reads one preset file; name names it in errors. Unknown fields are
// refused, and every field must be set: a framework that does not say
// where its rule comes from is not a preset.
func Parse(name string, data []byte) (Framework, error) {
	var f Framework
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("%w %s: %w", ErrInvalid, name, err)
	}
	bad := func(format string, a ...any) (Framework, error) {
		return f, fmt.Errorf("%w %s: %s", ErrInvalid, name, fmt.Sprintf(format, a...))
	}
	switch {
	case f.ID == "" || f.Title == "" || f.Source == "" || f.Policy == "":
		return bad("framework, title, source and policy are all required")
	case f.Scope != ScopeAll && f.Scope != ScopeKEV:
		return bad("scope %q: want %s or %s", f.Scope, ScopeAll, ScopeKEV)
	case f.Policy == InternalPolicy && f.SLA != nil:
		return bad("policy %q is the active remediation policy's: its days come from `patchgrid policy apply`, not a preset", InternalPolicy)
	case f.Policy != InternalPolicy && f.SLA == nil:
		return bad("policy %q needs an sla block (days per severity, kev_due_date)", f.Policy)
	}
	if f.SLA != nil {
		for _, s := range severity.All {
			if _, ok := f.SLA.Days[s]; !ok {
				return bad("sla.days lacks severity %q (want all of %v)", s, severity.All)
			}
		}
		for s := range f.SLA.Days {
			if !severity.Valid(s) {
				return bad("sla.days: unknown severity %q", s)
			}
		}
	}
	return f, nil
}

// Loaded is a framework as the store holds it: compliance_frameworks and
// its sla_policy rows.
type Loaded struct {
	ID, Title, Policy, Scope, Source string
	Days                             map[string]uint32
	KEVDueDate                       bool
}

// List reads the frameworks loaded in st with their SLA rows in force.
func List(ctx context.Context, st store.Store) ([]Loaded, error) {
	rows, err := st.Query(ctx, `SELECT f.framework, f.title, f.policy, f.scope, f.source, p.severity, p.sla_days, p.kev_due_date
		FROM (SELECT * FROM compliance_frameworks FINAL) AS f
		LEFT JOIN (SELECT * FROM sla_policy FINAL) AS p ON p.policy = f.policy
		ORDER BY f.framework, p.severity
		SETTINGS join_use_nulls = 0`)
	if err != nil {
		return nil, fmt.Errorf("compliance frameworks: %w", err)
	}
	defer rows.Close()
	var out []Loaded
	for rows.Next() {
		var l Loaded
		var sev string
		var days uint32
		var kev uint8
		if err := rows.Scan(&l.ID, &l.Title, &l.Policy, &l.Scope, &l.Source, &sev, &days, &kev); err != nil {
			return nil, fmt.Errorf("compliance frameworks: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != l.ID {
			l.Days = map[string]uint32{}
			out = append(out, l)
		}
		if sev != "" {
			cur := &out[len(out)-1]
			cur.Days[sev] = days
			cur.KEVDueDate = cur.KEVDueDate || kev == 1
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("compliance frameworks: %w", err)
	}
	return out, nil
}
