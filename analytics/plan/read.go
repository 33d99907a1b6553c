package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Summary is one row of plans.
type Summary struct {
	ID            string    `json:"plan_id"`
	CreatedAt     time.Time `json:"created_at"`
	CreatedBy     string    `json:"created_by"`
	At            time.Time `json:"plan_at"`
	HorizonEnd    time.Time `json:"horizon_end"`
	PolicyVersion uint32    `json:"policy_version"`
	Hosts         uint64    `json:"hosts"`
	Actions       uint64    `json:"actions"`
	Scheduled     uint64    `json:"scheduled"`
	Late          uint64    `json:"late"`
	Unscheduled   uint64    `json:"unscheduled"`
	Emergency     uint64    `json:"emergency"`
	Waves         uint32    `json:"waves"`
	Findings      uint64    `json:"findings"`
	// NoFix counts open findings of a package with no fix released (no
	// action); EndOfLife those of hosts on an end-of-life OS release
	// (status end_of_life: the fix is a release upgrade, not a package
	// action), on EndOfLifeHosts hosts. Both are listed in plan_no_fix.
	NoFix         uint64  `json:"no_fix"`
	RiskReduction float64 `json:"risk_reduction"`
	Current       bool    `json:"current"`
	// Excepted counts open findings an approved exception covers (no
	// action; listed in plan_excepted).
	Excepted       uint64 `json:"excepted"`
	EndOfLife      uint64 `json:"end_of_life"`
	EndOfLifeHosts uint64 `json:"end_of_life_hosts"`
}

// ErrNotFound marks an unknown plan id (or no plan yet).
var ErrNotFound = errors.New("plan not found")

const summaryCols = `plan_id, created_at, created_by, plan_at, horizon_end, policy_version, hosts, actions,
	scheduled, late, unscheduled, emergency, waves, findings, toUInt64(no_fix - end_of_life), risk_reduction,
	toUInt8(plan_id = (SELECT argMax(plan_id, (created_at, plan_id)) FROM plans)), excepted, end_of_life, end_of_life_hosts`

// summaryFrom is plans with each plan's excepted findings (plan_excepted,
// 0017) and end-of-life findings and hosts (plan_no_fix with status
// end_of_life, which plans.no_fix includes) counted.
const summaryFrom = ` FROM plans ANY LEFT JOIN (
	SELECT plan_id, sum(x) AS excepted, sum(e) AS end_of_life, sum(eh) AS end_of_life_hosts FROM (
		SELECT plan_id, count() AS x, toUInt64(0) AS e, toUInt64(0) AS eh FROM plan_excepted GROUP BY plan_id
		UNION ALL
		SELECT plan_id, toUInt64(0) AS x, count() AS e, toUInt64(uniqExact(host_id)) AS eh FROM plan_no_fix
		WHERE status = 'end_of_life' GROUP BY plan_id)
	GROUP BY plan_id) AS x USING (plan_id)`

func scanSummary(rows store.Rows) (Summary, error) {
	var s Summary
	var cur uint8
	err := rows.Scan(&s.ID, &s.CreatedAt, &s.CreatedBy, &s.At, &s.HorizonEnd, &s.PolicyVersion, &s.Hosts, &s.Actions,
		&s.Scheduled, &s.Late, &s.Unscheduled, &s.Emergency, &s.Waves, &s.Findings, &s.NoFix, &s.RiskReduction, &cur, &s.Excepted, &s.EndOfLife, &s.EndOfLifeHosts)
	s.Current = cur != 0
	return s, err
}

// List reads the plans, newest first, at most limit.
func List(ctx context.Context, st store.Store, limit, offset int) ([]Summary, error) {
	rows, err := st.Query(ctx, "SELECT "+summaryCols+summaryFrom+" ORDER BY created_at DESC, plan_id DESC LIMIT ? OFFSET ?", limit, offset)
	if err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	defer rows.Close()
	var out []Summary
	for rows.Next() {
		s, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("plans: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Get reads plan id; id "" is the current plan.
func Get(ctx context.Context, st store.Store, id string) (Summary, error) {
	q := "SELECT " + summaryCols + summaryFrom + " WHERE plan_id = ?"
	args := []any{id}
	if id == "" {
		q = "SELECT " + summaryCols + summaryFrom + " ORDER BY created_at DESC, plan_id DESC LIMIT 1"
		args = nil
	}
	rows, err := st.Query(ctx, q, args...)
	if err != nil {
		return Summary{}, fmt.Errorf("plan %s: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Summary{}, fmt.Errorf("plan %s: %w", id, err)
		}
		if id == "" {
			return Summary{}, fmt.Errorf("%w: no plan created yet (patchgrid plan create)", ErrNotFound)
		}
		return Summary{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	s, err := scanSummary(rows)
	if err != nil {
		return s, fmt.Errorf("plan %s: %w", id, err)
	}
	return s, nil
}

// ActionExportColumns are the columns of `plan export` and of the
// actions API, in order (documented in schemas/VIEWS.md with
// plan_actions).
var ActionExportColumns = []export.Column{
	{Name: "plan_id", Kind: export.String, Meaning: "plan id"},
	{Name: "action_id", Kind: export.String, Meaning: "action id, stable within the plan (outcomes refer to it)"},
	{Name: "rank", Kind: export.Int64, Meaning: "position in the plan: emergency first, then deadline, then risk"},
	{Name: "host_id", Kind: export.String, Meaning: "host"},
	{Name: "hostname", Kind: export.String, Meaning: "host name"},
	{Name: "owner", Kind: export.String, Meaning: "owning team"},
	{Name: "os", Kind: export.String, Meaning: "host OS"},
	{Name: "group", Kind: export.String, Meaning: "policy asset group"},
	{Name: "ecosystem", Kind: export.String, Meaning: "package ecosystem"},
	{Name: "package", Kind: export.String, Meaning: "installed package"},
	{Name: "installed_version", Kind: export.String, Meaning: "installed version"},
	{Name: "target_version", Kind: export.String, Meaning: "version to upgrade to"},
	{Name: "advisories", Kind: export.StringList, Meaning: "source/advisory_id closed by the upgrade"},
	{Name: "severity", Kind: export.String, Meaning: "highest severity among them"},
	{Name: "kev_advisories", Kind: export.Int64, Meaning: "how many of them are in CISA KEV"},
	{Name: "risk_reduction", Kind: export.Float64, Meaning: "sum of their risk scores"},
	{Name: "deadline", Kind: export.Time, Meaning: "earliest SLA deadline among them"},
	{Name: "ring", Kind: export.String, Meaning: "host ring"},
	{Name: "wave", Kind: export.Int64, Meaning: "wave number"},
	{Name: "window_start", Kind: export.Time, Meaning: "maintenance window start (null when unscheduled)"},
	{Name: "window_end", Kind: export.Time, Meaning: "maintenance window end (null when unscheduled)"},
	{Name: "emergency", Kind: export.Bool, Meaning: "takes the emergency path"},
	{Name: "approval_required", Kind: export.Bool, Meaning: "needs approval before it runs"},
	{Name: "status", Kind: export.String, Meaning: "scheduled, late or unscheduled"},
	{Name: "reason", Kind: export.String, Meaning: "why the action has its place (or why it is unscheduled)"},
}

var actionExprs = map[string]string{
	"rank": "toInt64(rank)", "kev_advisories": "toInt64(kev_advisories)", "wave": "toInt64(wave)",
	"group": "group_name", "risk_reduction": "round(toFloat64(risk_reduction), 2)",
	"deadline": "toDateTime(deadline, 'UTC')", "window_start": "toDateTime(window_start, 'UTC')",
	"window_end": "toDateTime(window_end, 'UTC')",
}

// ActionsSQL selects plan id's actions (f as for findings: severity, kev,
// ring, owner, os, host, min-risk on the risk removed) in rank order,
// optionally one page.
func ActionsSQL(id string, f risk.Filter, page *risk.Page) (string, []any, error) {
	if err := f.Validate(); err != nil {
		return "", nil, err
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range ActionExportColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		if e, ok := actionExprs[c.Name]; ok {
			b.WriteString(e + " AS `" + c.Name + "`")
		} else {
			b.WriteString(c.Name)
		}
	}
	where, args := filterWhere(f, true)
	if where == "" {
		where = " WHERE plan_id = ?"
	} else {
		where += " AND plan_id = ?"
	}
	b.WriteString(" FROM plan_actions" + where + " ORDER BY rank")
	args = append(args, id)
	if page != nil {
		b.WriteString(" LIMIT ? OFFSET ?")
		args = append(args, page.Limit, page.Offset)
	}
	return b.String(), args, nil
}

// Actions opens a cursor over plan id's actions (columns
// ActionExportColumns). The caller closes it.
func Actions(ctx context.Context, st store.Store, id string, f risk.Filter, page *risk.Page) (store.Rows, error) {
	q, args, err := ActionsSQL(id, f, page)
	if err != nil {
		return nil, err
	}
	rows, err := st.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("plan %s actions: %w", id, err)
	}
	return rows, nil
}

// Formats are plan export formats: export's plus ansible.
var Formats = append(append([]string{}, export.Formats...), "ansible")

// Export writes plan id's actions to w in format and returns the number
// of actions written.
func Export(ctx context.Context, st store.Store, id string, f risk.Filter, format string, w io.Writer) (int64, error) {
	if format == "ansible" {
		return exportAnsible(ctx, st, id, f, w)
	}
	rows, err := Actions(ctx, st, id, f, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	ew, err := export.NewWriter(format, w, ActionExportColumns)
	if err != nil {
		return 0, err
	}
	return export.Copy(ctx, rows, ActionExportColumns, ew, 0)
}

// Fix is one (package, target version) of a plan across hosts: the change
// board's unit.
type Fix struct {
	Ecosystem     string    `json:"ecosystem"`
	Package       string    `json:"package"`
	TargetVersion string    `json:"target_version"`
	Hosts         uint64    `json:"hosts"`
	Actions       uint64    `json:"actions"`
	Advisories    uint64    `json:"advisories"`
	KEVAdvisories uint64    `json:"kev_advisories"`
	RiskReduction float64   `json:"risk_reduction"`
	Emergency     bool      `json:"emergency"`
	FirstWindow   time.Time `json:"first_window,omitzero"` // zero when none is scheduled
	Unscheduled   uint64    `json:"unscheduled"`
}

// Fixes groups plan id's actions by fix, most risk removed first.
func Fixes(ctx context.Context, st store.Store, id string, limit int) ([]Fix, error) {
	rows, err := st.Query(ctx, `SELECT ecosystem, package, target_version, uniqExact(host_id), count(),
		length(groupUniqArrayArray(advisories)), length(groupUniqArrayArray(kev_ids)), sum(risk_reduction), max(emergency),
		minIf(window_start, status != 'unscheduled'), countIf(status = 'unscheduled')
		FROM plan_actions WHERE plan_id = ?
		GROUP BY ecosystem, package, target_version
		ORDER BY sum(risk_reduction) DESC, ecosystem, package, target_version LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("plan %s fixes: %w", id, err)
	}
	defer rows.Close()
	var out []Fix
	for rows.Next() {
		var x Fix
		var em uint8
		if err := rows.Scan(&x.Ecosystem, &x.Package, &x.TargetVersion, &x.Hosts, &x.Actions, &x.Advisories, &x.KEVAdvisories,
			&x.RiskReduction, &em, &x.FirstWindow, &x.Unscheduled); err != nil {
			return nil, fmt.Errorf("plan %s fixes: %w", id, err)
		}
		x.Emergency = em != 0
		if x.FirstWindow.Unix() <= 0 {
			x.FirstWindow = time.Time{}
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// EOLRelease is one end-of-life OS release of a plan's hosts: the fix is
// a release upgrade, not a package action, so the plan has no action for
// it and lists it apart from the fixes (plan_no_fix, status end_of_life).
type EOLRelease struct {
	Release   string  `json:"release"`  // os ecosystem with its release, e.g. Debian:10
	Advisory  string  `json:"advisory"` // source/EOL-<release>
	Hosts     uint64  `json:"hosts"`
	RiskScore float64 `json:"risk_score"` // the sum over its hosts
}

// EndOfLifeReleases lists plan id's end-of-life releases, most hosts
// first, at most limit.
func EndOfLifeReleases(ctx context.Context, st store.Store, id string, limit int) ([]EOLRelease, error) {
	rows, err := st.Query(ctx, `SELECT ecosystem, any(advisory), uniqExact(host_id), sum(risk_score)
		FROM plan_no_fix WHERE plan_id = ? AND status = 'end_of_life'
		GROUP BY ecosystem ORDER BY uniqExact(host_id) DESC, ecosystem LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("plan %s end-of-life releases: %w", id, err)
	}
	defer rows.Close()
	var out []EOLRelease
	for rows.Next() {
		var x EOLRelease
		if err := rows.Scan(&x.Release, &x.Advisory, &x.Hosts, &x.RiskScore); err != nil {
			return nil, fmt.Errorf("plan %s end-of-life releases: %w", id, err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// Wave is one wave of a plan.
type Wave struct {
	Wave          uint32    `json:"wave"`
	Ring          string    `json:"ring"`
	Emergency     bool      `json:"emergency"`
	Opens         time.Time `json:"opens"`
	Closes        time.Time `json:"closes"`
	Hosts         uint64    `json:"hosts"`
	Actions       uint64    `json:"actions"`
	RiskReduction float64   `json:"risk_reduction"`
}

// Waves lists plan id's scheduled waves in order.
func Waves(ctx context.Context, st store.Store, id string) ([]Wave, error) {
	rows, err := st.Query(ctx, `SELECT wave, any(ring), max(emergency), min(window_start), max(window_end),
		uniqExact(host_id), count(), sum(risk_reduction)
		FROM plan_actions WHERE plan_id = ? AND status != 'unscheduled'
		GROUP BY wave ORDER BY wave`, id)
	if err != nil {
		return nil, fmt.Errorf("plan %s waves: %w", id, err)
	}
	defer rows.Close()
	var out []Wave
	for rows.Next() {
		var x Wave
		var em uint8
		if err := rows.Scan(&x.Wave, &x.Ring, &em, &x.Opens, &x.Closes, &x.Hosts, &x.Actions, &x.RiskReduction); err != nil {
			return nil, fmt.Errorf("plan %s waves: %w", id, err)
		}
		x.Emergency = em != 0
		out = append(out, x)
	}
	return out, rows.Err()
}

// exportAnsible writes an Ansible inventory (YAML): one group per wave
// (wave_<n>, emergency waves flagged by a var), each host with its
// upgrades as "package=version" strings in host var patchgrid_packages
// and the action ids in patchgrid_actions. Unscheduled actions are left
// out (they have no wave to run in).
func exportAnsible(ctx context.Context, st store.Store, id string, f risk.Filter, w io.Writer) (int64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	where, args := filterWhere(f, true)
	if where == "" {
		where = " WHERE "
	} else {
		where += " AND "
	}
	rows, err := st.Query(ctx, `SELECT wave, host_id, hostname, package, target_version, action_id, emergency, window_start, window_end
		FROM plan_actions`+where+`plan_id = ? AND status != 'unscheduled' ORDER BY wave, hostname, host_id, package`, append(args, id)...)
	if err != nil {
		return 0, fmt.Errorf("plan %s ansible: %w", id, err)
	}
	defer rows.Close()
	var hosts []AnsibleHost
	for rows.Next() {
		var h AnsibleHost
		var hid, pkg, tv, aid string
		var em uint8
		if err := rows.Scan(&h.Wave, &hid, &h.Name, &pkg, &tv, &aid, &em, &h.WindowStart, &h.WindowEnd); err != nil {
			return 0, fmt.Errorf("plan %s ansible: %w", id, err)
		}
		if h.Name == "" {
			h.Name = hid
		}
		h.Emergency = em != 0
		if n := len(hosts); n > 0 && hosts[n-1].Wave == h.Wave && hosts[n-1].Name == h.Name {
			hosts[n-1].Packages = append(hosts[n-1].Packages, pkg+"="+tv)
			hosts[n-1].Actions = append(hosts[n-1].Actions, aid)
			continue
		}
		h.Packages, h.Actions = []string{pkg + "=" + tv}, []string{aid}
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("plan %s ansible: %w", id, err)
	}
	var n int64
	for _, h := range hosts {
		n += int64(len(h.Actions))
	}
	if _, err := io.WriteString(w, Ansible(id, hosts)); err != nil {
		return n, fmt.Errorf("plan %s ansible: %w", id, err)
	}
	return n, nil
}

// AnsibleHost is one host of one wave in an Ansible inventory.
type AnsibleHost struct {
	Wave                   uint32
	Name                   string
	Packages, Actions      []string // "package=version", action ids
	Emergency              bool
	WindowStart, WindowEnd time.Time
}

// Ansible renders the inventory of plan id: hosts grouped by wave
// (wave_<n> groups in wave order, hosts in the order given).
func Ansible(id string, hosts []AnsibleHost) string {
	waves := map[uint32][]AnsibleHost{}
	var order []uint32
	for _, h := range hosts {
		if _, ok := waves[h.Wave]; !ok {
			order = append(order, h.Wave)
		}
		waves[h.Wave] = append(waves[h.Wave], h)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	var b strings.Builder
	fmt.Fprintf(&b, "# patchgrid plan %s: one group per wave; run the waves in order.\nall:\n  vars:\n    patchgrid_plan_id: %s\n  children:\n", yq(id), yq(id))
	if len(order) == 0 {
		b.WriteString("    {}\n")
	}
	for _, wv := range order {
		fmt.Fprintf(&b, "    wave_%d:\n      hosts:\n", wv)
		for _, h := range waves[wv] {
			fmt.Fprintf(&b, "        %s:\n          patchgrid_packages: [", yq(h.Name))
			for i, p := range h.Packages {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(yq(p))
			}
			b.WriteString("]\n          patchgrid_actions: [")
			b.WriteString(strings.Join(h.Actions, ", "))
			fmt.Fprintf(&b, "]\n          patchgrid_window_start: %s\n          patchgrid_window_end: %s\n          patchgrid_emergency: %t\n",
				yq(h.WindowStart.UTC().Format(time.RFC3339)), yq(h.WindowEnd.UTC().Format(time.RFC3339)), h.Emergency)
		}
	}
	return b.String()
}

// yq quotes s as a YAML double-quoted scalar (hostnames and versions come
// from scans: never trust them to be plain YAML).
func yq(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// WaveActions reads up to limit scheduled (or late) actions of plan id's
// wave, in rank order: host, package, versions and status.
func WaveActions(ctx context.Context, st store.Store, id string, wave uint32, limit int) ([]Action, error) {
	rows, err := st.Query(ctx, `SELECT action_id, host_id, hostname, package, installed_version, target_version, status
		FROM plan_actions WHERE plan_id = ? AND wave = ? AND status != 'unscheduled' ORDER BY rank LIMIT ?`, id, wave, limit)
	if err != nil {
		return nil, fmt.Errorf("plan %s wave %d: %w", id, wave, err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		a := Action{PlanID: id, Wave: wave}
		if err := rows.Scan(&a.ActionID, &a.HostID, &a.Hostname, &a.Package, &a.InstalledVersion, &a.TargetVersion, &a.Status); err != nil {
			return nil, fmt.Errorf("plan %s wave %d: %w", id, wave, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
