package plan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// findingsSQL is the planner's one read of the open findings: the columns
// it needs from finding_risk (the findings the API and exports show),
// cast so that both backends scan the same Go types.
const findingsSQL = `SELECT host_id, hostname, owner, ring, os, toInt64(criticality), toUInt8(internet_facing),
	source, advisory_id, severity, toFloat64(epss), toUInt8(has_epss), toUInt8(kev),
	if(kev = 1, toDateTime(kev_due_date, 'UTC'), toDateTime(0, 'UTC')),
	ecosystem, package, installed_version, status, fixed_version, toDateTime(clock_start, 'UTC'), toFloat64(risk_score)
	FROM finding_risk`

// ReadFindings streams the open findings f selects to fn.
func ReadFindings(ctx context.Context, st store.Store, f risk.Filter, fn func(*Finding)) error {
	if err := f.Validate(); err != nil {
		return err
	}
	where, args := filterWhere(f, false)
	rows, err := st.Query(ctx, findingsSQL+where, args...)
	if err != nil {
		return fmt.Errorf("plan: read open findings: %w", err)
	}
	defer rows.Close()
	var x Finding
	var crit int64
	var inet, hasEPSS, kev uint8
	n := 0
	for rows.Next() {
		if err := rows.Scan(&x.HostID, &x.Hostname, &x.Owner, &x.Ring, &x.OS, &crit, &inet,
			&x.Source, &x.AdvisoryID, &x.Severity, &x.EPSS, &hasEPSS, &kev, &x.KEVDueDate,
			&x.Ecosystem, &x.Package, &x.Installed, &x.Status, &x.FixedVersion, &x.ClockStart, &x.RiskScore); err != nil {
			return fmt.Errorf("plan: read open findings: row %d: %w", n+1, err)
		}
		x.Criticality, x.InternetFacing, x.HasEPSS, x.KEV = int(crit), inet != 0, hasEPSS != 0, kev != 0
		if x.KEVDueDate.Unix() <= 0 {
			x.KEVDueDate = time.Time{}
		}
		fn(&x)
		n++
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("plan: read open findings: %w", err)
	}
	return nil
}

// filterWhere is the findings filter (risk.Filter.WhereOn) over
// finding_risk (actions=false) or plan_actions (actions=true), where kev
// means "closes a KEV advisory" and min-risk applies to the risk the
// action removes (severity there is the highest of its advisories).
func filterWhere(f risk.Filter, actions bool) (string, []any) {
	if !actions {
		return f.Where()
	}
	return f.WhereOn(func(v bool) string {
		if v {
			return "kev_advisories > 0"
		}
		return "kev_advisories = 0"
	}, "risk_reduction")
}

// CreateOptions configure Create.
type CreateOptions struct {
	At      time.Time     // the plan's now; default time.Now
	Horizon time.Duration // default 30 days
	Actor   string        // who creates it (recorded)
	Scope   risk.Filter   // which findings the plan covers; zero: all
	// Policy overrides the active policy (tests, `run` with the sample).
	Policy        *policy.Policy
	PolicyVersion uint32
	// Audit, when set, records the plan in the audit trail (plan.create).
	Audit *audit.Log
}

// DefaultHorizon is how far ahead a plan schedules by default.
const DefaultHorizon = 30 * 24 * time.Hour

// Create builds a plan from the open findings under the active policy
// (the built-in default, version 0, when none was applied) and stores it.
// It refuses on a server without the risk views, naming its version.
func Create(ctx context.Context, st store.Store, o CreateOptions) (*Plan, error) {
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		return nil, fmt.Errorf("plan create: %w", err)
	}
	if o.At.IsZero() {
		o.At = time.Now()
	}
	if o.Horizon <= 0 {
		o.Horizon = DefaultHorizon
	}
	pol, ver := o.Policy, o.PolicyVersion
	if pol == nil {
		v, err := policy.Active(ctx, st)
		switch {
		case errors.Is(err, policy.ErrNoPolicy):
			if pol, err = policy.Default(); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, fmt.Errorf("plan create: %w", err)
		default:
			if pol, err = v.Policy(); err != nil {
				return nil, fmt.Errorf("plan create: %w", err)
			}
			ver = v.Version
		}
	}
	b := NewBuilder(pol, o.At, o.Horizon)
	if err := ReadFindings(ctx, st, o.Scope, b.Add); err != nil {
		return nil, err
	}
	if pol.UsesTags() {
		if err := readTags(ctx, st, b); err != nil {
			return nil, err
		}
	}
	p := b.Build(NewID(o.At), ver)
	if err := Write(ctx, st, p, o.Actor, time.Now()); err != nil {
		return nil, err
	}
	if o.Audit != nil {
		sched, late, unsched, emerg, riskSum := p.Counts()
		summary := map[string]any{"plan_id": p.ID, "policy_version": ver, "actions": len(p.Actions), "scheduled": sched,
			"late": late, "unscheduled": unsched, "emergency": emerg, "waves": p.Waves, "risk_reduction": riskSum}
		if _, err := o.Audit.Append(ctx, audit.Event{Actor: o.Actor, Action: "plan.create", Object: "plan:" + p.ID, After: summary,
			Detail: fmt.Sprintf("%d actions under policy version %d", len(p.Actions), ver)}); err != nil {
			return p, fmt.Errorf("plan %s is stored, but its audit entry failed: %w", p.ID, err)
		}
	}
	return p, nil
}

// readTags attaches each planned host's tags from its latest scan (only
// policies with tag selectors need them).
func readTags(ctx context.Context, st store.Store, b *Builder) error {
	rows, err := st.Query(ctx, "SELECT host_id, argMax(tags, (scanned_at, scan_id)) FROM scans GROUP BY host_id")
	if err != nil {
		return fmt.Errorf("plan: read host tags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var tags []string
		if err := rows.Scan(&id, &tags); err != nil {
			return fmt.Errorf("plan: read host tags: %w", err)
		}
		if h, ok := b.hosts[id]; ok {
			h.Tags = tags
		}
	}
	return rows.Err()
}

// NewID makes a plan id: PL-<at, UTC>-<random>.
func NewID(at time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "PL-" + at.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(r[:])
}

// ActionColumns are plan_actions' columns in insert order.
var ActionColumns = []string{"plan_id", "action_id", "rank", "host_id", "hostname", "owner", "os", "group_name",
	"ecosystem", "package", "installed_version", "target_version", "advisories", "kev_advisories", "kev_ids", "risk_reduction",
	"deadline", "ring", "wave", "window_start", "window_end", "emergency", "approval_required", "status", "reason", "severity"}

const insertBatch = 50_000

// Write stores p: actions and no-fix findings first, the plans row last,
// so a plan becomes current only once it is complete (a failed write
// leaves orphan rows no view shows; retrying creates a new plan).
func Write(ctx context.Context, st store.Store, p *Plan, actor string, now time.Time) error {
	epoch := time.Unix(0, 0).UTC()
	or0 := func(t time.Time) time.Time {
		if t.IsZero() {
			return epoch
		}
		return t
	}
	b8 := func(b bool) uint8 {
		if b {
			return 1
		}
		return 0
	}
	rows := make([][]any, 0, min(len(p.Actions), insertBatch))
	for i := range p.Actions {
		a := &p.Actions[i]
		rows = append(rows, []any{a.PlanID, a.ActionID, a.Rank, a.HostID, a.Hostname, a.Owner, a.OS, a.Group,
			a.Ecosystem, a.Package, a.InstalledVersion, a.TargetVersion, a.Advisories, a.KEVAdvisories, nonNil(a.KEVIDs), a.RiskReduction,
			or0(a.Deadline), a.Ring, a.Wave, or0(a.WindowStart), or0(a.WindowEnd), b8(a.Emergency), b8(a.ApprovalRequired),
			a.Status, a.Reason, a.Severity})
		if len(rows) == insertBatch || i == len(p.Actions)-1 {
			if err := st.Insert(ctx, "plan_actions", ActionColumns, rows); err != nil {
				return fmt.Errorf("plan %s: write actions: %w", p.ID, err)
			}
			rows = rows[:0]
		}
	}
	rows = rows[:0]
	for i, n := range p.NoFix {
		rows = append(rows, []any{p.ID, n.HostID, n.Hostname, n.Ecosystem, n.Package, n.InstalledVersion, n.Advisory, n.Status, n.RiskScore})
		if len(rows) == insertBatch || i == len(p.NoFix)-1 {
			if err := st.Insert(ctx, "plan_no_fix", []string{"plan_id", "host_id", "hostname", "ecosystem", "package",
				"installed_version", "advisory", "status", "risk_score"}, rows); err != nil {
				return fmt.Errorf("plan %s: write no-fix findings: %w", p.ID, err)
			}
			rows = rows[:0]
		}
	}
	sched, late, unsched, emerg, riskSum := p.Counts()
	if err := st.Insert(ctx, "plans", []string{"plan_id", "created_at", "created_by", "plan_at", "horizon_end", "policy_version",
		"hosts", "actions", "scheduled", "late", "unscheduled", "emergency", "waves", "findings", "no_fix", "risk_reduction"},
		[][]any{{p.ID, now.UTC().Truncate(time.Second), actor, p.At, p.HorizonEnd, p.PolicyVersion,
			uint64(p.Hosts), uint64(len(p.Actions)), uint64(sched), uint64(late), uint64(unsched), uint64(emerg), p.Waves,
			p.Findings, uint64(len(p.NoFix)), riskSum}}); err != nil {
		return fmt.Errorf("plan %s: write plan: %w", p.ID, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
