package plan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	// Log receives progress (each step and its time). Default: none.
	Log *slog.Logger
}

// DefaultHorizon is how far ahead a plan schedules by default.
const DefaultHorizon = 30 * 24 * time.Hour

// Create builds a plan from the open findings under the active policy
// (the built-in default, version 0, when none was applied) and stores it.
// It refuses on a server without the risk views, naming its version.
func Create(ctx context.Context, st store.Store, o CreateOptions) (Summary, error) {
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		return Summary{}, fmt.Errorf("plan create: %w", err)
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
				return Summary{}, err
			}
		case err != nil:
			return Summary{}, fmt.Errorf("plan create: %w", err)
		default:
			if pol, err = v.Policy(); err != nil {
				return Summary{}, fmt.Errorf("plan create: %w", err)
			}
			ver = v.Version
		}
	}
	at := o.At.UTC().Truncate(time.Second)
	id := NewID(at)
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &engine{st: st, pol: pol, id: id, at: at, end: at.Add(o.Horizon), log: log}
	if where, args := filterWhere(o.Scope, false); where != "" {
		e.scope, e.args = "("+strings.TrimPrefix(where, " WHERE ")+")", args
	}
	// The working rows go whatever happens; a cancelled ctx must not keep
	// them.
	defer e.dropStage(context.WithoutCancel(ctx))
	s := Summary{ID: id, At: at, HorizonEnd: e.end, PolicyVersion: ver, CreatedBy: o.Actor}
	t0 := time.Now()
	if err := e.versionKeys(ctx); err != nil {
		return s, err
	}
	log.Info("plan step", "plan", id, "step", "version keys", "took", time.Since(t0).Round(time.Millisecond))
	t1 := time.Now()
	excepted, err := e.exceptions(ctx)
	if err != nil {
		return s, err
	}
	log.Info("plan step", "plan", id, "step", "exceptions", "took", time.Since(t1).Round(time.Millisecond))
	if err := e.noFix(ctx, excepted); err != nil {
		return s, err
	}
	bounds, err := e.stage(ctx, excepted)
	if err != nil {
		return s, err
	}
	t1 = time.Now()
	units, nHosts, err := e.units(ctx)
	if err != nil {
		return s, err
	}
	log.Info("plan step", "plan", id, "step", "read units and host windows", "units", len(units), "hosts", nHosts, "took", time.Since(t1).Round(time.Millisecond))
	t1 = time.Now()
	s.Waves = schedule(pol, e.at, e.end, units)
	if err := e.writeHosts(ctx, units); err != nil {
		return s, err
	}
	log.Info("plan step", "plan", id, "step", "schedule and write hosts", "waves", s.Waves, "took", time.Since(t1).Round(time.Millisecond))
	if err := e.final(ctx, bounds); err != nil {
		return s, err
	}
	t1 = time.Now()
	if err := e.summary(ctx, &s); err != nil {
		return s, err
	}
	log.Info("plan step", "plan", id, "step", "summary", "took", time.Since(t1).Round(time.Millisecond))
	// The plans row last: a plan becomes current only once complete (a
	// failed create leaves orphan rows no view shows; a retry makes a new
	// plan).
	s.CreatedAt = time.Now().UTC().Truncate(time.Second)
	if err := st.Insert(ctx, "plans", []string{"plan_id", "created_at", "created_by", "plan_at", "horizon_end", "policy_version",
		"hosts", "actions", "scheduled", "late", "unscheduled", "emergency", "waves", "findings", "no_fix", "risk_reduction"},
		[][]any{{s.ID, s.CreatedAt, s.CreatedBy, s.At, s.HorizonEnd, s.PolicyVersion, s.Hosts, s.Actions, s.Scheduled, s.Late,
			s.Unscheduled, s.Emergency, s.Waves, s.Findings, s.NoFix + s.EndOfLife, s.RiskReduction}}); err != nil {
		return s, fmt.Errorf("plan %s: write plan: %w", s.ID, err)
	}
	s.Current = true
	log.Info("plan created", "plan", s.ID, "findings", s.Findings, "actions", s.Actions, "hosts", s.Hosts,
		"excepted", s.Excepted, "no_fix", s.NoFix, "end_of_life", s.EndOfLife, "took", time.Since(t0).Round(time.Millisecond))
	if o.Audit != nil {
		summary := map[string]any{"plan_id": s.ID, "policy_version": ver, "actions": s.Actions, "scheduled": s.Scheduled,
			"late": s.Late, "unscheduled": s.Unscheduled, "emergency": s.Emergency, "waves": s.Waves, "risk_reduction": s.RiskReduction,
			"excepted": s.Excepted, "no_fix": s.NoFix, "end_of_life": s.EndOfLife}
		if _, err := o.Audit.Append(ctx, audit.Event{Actor: o.Actor, Action: "plan.create", Object: "plan:" + s.ID, After: summary,
			Detail: fmt.Sprintf("%d actions under policy version %d", s.Actions, ver)}); err != nil {
			return s, fmt.Errorf("plan %s is stored, but its audit entry failed: %w", s.ID, err)
		}
	}
	return s, nil
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
