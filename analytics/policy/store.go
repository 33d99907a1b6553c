package policy

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Version is one stored policy version.
type Version struct {
	Version    uint32
	Name       string
	SourceFile string
	Source     string // the YAML as applied
	Canonical  string
	SHA256     string
	CreatedAt  time.Time
	CreatedBy  string
	// Set for the active version (Active): when and by whom it was
	// activated last.
	ActivatedAt time.Time
	ActivatedBy string
}

// Policy parses the stored source again (the stored form is the file as
// applied; parsing restores the time zones and schedules).
func (v Version) Policy() (*Policy, error) {
	p, err := Parse(fmt.Sprintf("policy version %d (%s)", v.Version, v.SourceFile), []byte(v.Source))
	if err != nil {
		return nil, fmt.Errorf("stored policy version %d no longer parses: %w", v.Version, err)
	}
	return p, nil
}

// ErrNoPolicy means no policy was ever applied.
var ErrNoPolicy = errors.New("no policy applied yet (patchgrid policy apply FILE.yaml)")

// ErrNotFound marks an unknown version.
var ErrNotFound = errors.New("policy version not found")

// ApplyResult says what Apply did.
type ApplyResult struct {
	Version   uint32
	New       bool // a new version was stored (false: identical to an existing version, re-activated)
	WasActive bool // it was already the active version: nothing changed
	// SLAWritten: sla_policy rows of policy 'default' were written. False
	// on a server without the KPI views (no sla_policy table there).
	SLAWritten bool
}

// Apply parses source (file names it in errors), stores it as a new
// version unless an identical version exists, writes its SLA days into
// sla_policy (policy 'default'), and makes it active, recorded as done by
// actor at now. Invalid input stores nothing and leaves the active policy
// as it was. A failure after the version is stored leaves that version
// inactive; re-running Apply finishes the job.
//
// Every activation is recorded in the audit trail log (action
// policy.apply, object policy:N, the canonical forms before and after)
// when log is not nil.
func Apply(ctx context.Context, st store.Store, log *audit.Log, file string, source []byte, actor string, now time.Time) (ApplyResult, error) {
	var res ApplyResult
	if actor == "" {
		return res, fmt.Errorf("%w: policy apply needs the actor who applies it", ErrInvalid)
	}
	p, err := Parse(file, source)
	if err != nil {
		return res, err
	}
	canonical := p.Canonical()
	sum := sha256.Sum256([]byte(canonical))
	hash := hex.EncodeToString(sum[:])
	now = now.UTC().Truncate(time.Second)

	var maxVersion, sameVersion uint32
	rows, err := st.Query(ctx, "SELECT version, sha256 FROM policy_versions FINAL ORDER BY version")
	if err != nil {
		return res, fmt.Errorf("policy apply %s: read versions: %w", file, err)
	}
	for rows.Next() {
		var v uint32
		var h string
		if err := rows.Scan(&v, &h); err != nil {
			rows.Close()
			return res, fmt.Errorf("policy apply %s: read versions: %w", file, err)
		}
		maxVersion = max(maxVersion, v)
		if h == hash && sameVersion == 0 {
			sameVersion = v
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return res, fmt.Errorf("policy apply %s: read versions: %w", file, err)
	}
	rows.Close()

	active, activeErr := Active(ctx, st)
	if activeErr != nil && !errors.Is(activeErr, ErrNoPolicy) {
		return res, activeErr
	}
	if sameVersion != 0 {
		res.Version = sameVersion
		if activeErr == nil && active.Version == sameVersion {
			res.WasActive = true
			return res, nil
		}
	} else {
		res.Version, res.New = maxVersion+1, true
		if err := st.Insert(ctx, "policy_versions",
			[]string{"version", "name", "source_file", "source", "canonical", "sha256", "created_at", "created_by"},
			[][]any{{res.Version, p.Name, file, string(source), canonical, hash, now, actor}}); err != nil {
			return res, fmt.Errorf("policy apply %s: store version %d (retry: nothing was activated): %w", file, res.Version, err)
		}
	}
	// The SLA views read sla_policy: the active policy's days go there
	// before the activation is recorded, so an active policy never has
	// stale SLA rows.
	if res.SLAWritten, err = writeSLA(ctx, st, p, now); err != nil {
		return res, fmt.Errorf("policy apply %s: write sla_policy (retry: version %d is stored, not active): %w", file, res.Version, err)
	}
	if err := st.Insert(ctx, "policy_activations", []string{"activated_at", "version", "activated_by"},
		[][]any{{now, res.Version, actor}}); err != nil {
		return res, fmt.Errorf("policy apply %s: activate version %d (retry): %w", file, res.Version, err)
	}
	if log != nil {
		var before any
		if activeErr == nil {
			before = active.Canonical
		}
		if _, err := log.Append(ctx, audit.Event{Actor: actor, Action: "policy.apply", Object: fmt.Sprintf("policy:%d", res.Version),
			Before: before, After: canonical, Detail: fmt.Sprintf("applied %s as version %d", file, res.Version), At: now}); err != nil {
			return res, fmt.Errorf("policy apply %s: version %d is active, but its audit entry failed: %w", file, res.Version, err)
		}
	}
	return res, nil
}

// writeSLA replaces the rows of policy 'default' in sla_policy (a
// ReplacingMergeTree on updated_at: rows with a later updated_at win).
func writeSLA(ctx context.Context, st store.Store, p *Policy, now time.Time) (bool, error) {
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		return false, nil // the old server has no sla_policy table: policy storage only
	}
	kev := uint8(0)
	if p.SLA.KEVDueDate {
		kev = 1
	}
	rows := make([][]any, 0, len(severity.All))
	for _, s := range severity.All {
		rows = append(rows, []any{"default", s, p.SLA.Days[s], kev, now})
	}
	return true, st.Insert(ctx, "sla_policy", []string{"policy", "severity", "sla_days", "kev_due_date", "updated_at"}, rows)
}

const versionCols = "version, name, source_file, source, canonical, sha256, created_at, created_by"

func scanVersion(rows store.Rows, v *Version) error {
	return rows.Scan(&v.Version, &v.Name, &v.SourceFile, &v.Source, &v.Canonical, &v.SHA256, &v.CreatedAt, &v.CreatedBy)
}

// Get reads one version.
func Get(ctx context.Context, st store.Store, version uint32) (Version, error) {
	var v Version
	rows, err := st.Query(ctx, "SELECT "+versionCols+" FROM policy_versions FINAL WHERE version = ?", version)
	if err != nil {
		return v, fmt.Errorf("policy version %d: %w", version, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return v, fmt.Errorf("policy version %d: %w", version, err)
		}
		return v, fmt.Errorf("%w: %d", ErrNotFound, version)
	}
	if err := scanVersion(rows, &v); err != nil {
		return v, fmt.Errorf("policy version %d: %w", version, err)
	}
	return v, nil
}

// Active reads the active version with who activated it and when;
// ErrNoPolicy when none was applied.
func Active(ctx context.Context, st store.Store) (Version, error) {
	var v Version
	rows, err := st.Query(ctx, "SELECT version, activated_at, activated_by FROM policy_active")
	if err != nil {
		return v, fmt.Errorf("active policy: %w", err)
	}
	var found bool
	if rows.Next() {
		found = true
		err = rows.Scan(&v.Version, &v.ActivatedAt, &v.ActivatedBy)
	}
	if err == nil {
		err = rows.Err()
	}
	rows.Close()
	if err != nil {
		return v, fmt.Errorf("active policy: %w", err)
	}
	if !found {
		return v, ErrNoPolicy
	}
	at, by := v.ActivatedAt, v.ActivatedBy
	if v, err = Get(ctx, st, v.Version); err != nil {
		return v, err
	}
	v.ActivatedAt, v.ActivatedBy = at, by
	return v, nil
}

// Activation is one row of the activation history.
type Activation struct {
	Version     uint32
	ActivatedAt time.Time
	ActivatedBy string
}

// History lists every activation, oldest first.
func History(ctx context.Context, st store.Store) ([]Activation, error) {
	rows, err := st.Query(ctx, "SELECT version, activated_at, activated_by FROM policy_activations ORDER BY activated_at, version")
	if err != nil {
		return nil, fmt.Errorf("policy history: %w", err)
	}
	defer rows.Close()
	var out []Activation
	for rows.Next() {
		var a Activation
		if err := rows.Scan(&a.Version, &a.ActivatedAt, &a.ActivatedBy); err != nil {
			return nil, fmt.Errorf("policy history: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Default is the policy in force when none was applied: the migration's
// SLA days with the KEV rule, no groups, no rings ("any time, one wave"),
// no emergency path.
func Default() (*Policy, error) {
	return Parse("built-in default policy", []byte(defaultYAML))
}

const defaultYAML = `sla:
  days: {critical: 15, high: 30, medium: 90, low: 180, none: 365, unknown: 90}
  kev_due_date: true
`

// SampleYAML is the sample policy shipped with patchgrid (sample.yaml):
// three groups with windows, a freeze, three rings with gates, a blast
// radius and the emergency path. `patchgrid run` plans under it.
//
//go:embed sample.yaml
var SampleYAML []byte

// ExceptionCap is the active policy's cap on an exception's lifetime
// (exceptions.max_duration); zero when no policy is active or it sets
// none, so the exception book's own default applies. Read at each request,
// so applying a policy changes the cap without a restart.
func ExceptionCap(ctx context.Context, st store.Store) (time.Duration, error) {
	v, err := Active(ctx, st)
	if errors.Is(err, ErrNoPolicy) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("exception cap: %w", err)
	}
	p, err := v.Policy()
	if err != nil {
		return 0, fmt.Errorf("exception cap: policy version %d: %w", v.Version, err)
	}
	return time.Duration(p.Exceptions.MaxDuration), nil
}
