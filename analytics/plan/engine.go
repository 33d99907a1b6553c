package plan

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// The engine's plan: Create builds a plan inside ClickHouse, with Go
// doing only what SQL cannot (version keys, the policy's calendar):
//
//  1. the distinct fixed versions of the open findings are keyed in Go
//     (schemas/version) into plan_version_keys;
//  2. findings an approved exception covers go to plan_excepted, findings
//     with no fix to plan_no_fix (INSERT … SELECT);
//  3. the rest are aggregated per (host, ecosystem, package) into
//     plan_stage_actions by INSERT … SELECT, in batches of hosts of about
//     rowsPerBatch findings so the engine's memory stays bounded: target
//     (the highest fixed version by key), advisories, risk, deadline and
//     emergency as the Builder computes them (deadlineSQL and
//     emergencySQL state the policy's rules in SQL);
//  4. Go reads one row per (host, emergency) — a few per host — and
//     schedules them with the Builder's scheduler (schedule), writing
//     plan_hosts;
//  5. the staged actions are ranked over narrow rows (plan_stage_ranks),
//     and plan_actions is filled by INSERT … SELECT, in the same batches of
//     hosts, joining them with plan_hosts: action id, status and reason by
//     place()'s rules (final).
//
// TestEngineMatchesBuilder holds the two paths equal on generated fleets.

// rowsPerBatch bounds the findings one aggregation statement covers (a
// batch is whole hosts of about this many fixable findings), so the
// engine's hash tables hold a slice of the fleet, never all of it.
const rowsPerBatch = 1_000_000

type engine struct {
	st      store.Store
	pol     *policy.Policy
	id      string
	at, end time.Time
	scope   string // AND-able condition over finding_risk ("" for all)
	args    []any
	log     *slog.Logger
}

func (e *engine) where(extra ...string) string {
	conds := extra
	if e.scope != "" {
		conds = append([]string{e.scope}, extra...)
	}
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

const fixable = "status = 'affected' AND fixed_version != ''"

func (e *engine) exec(ctx context.Context, what, q string, args ...any) error {
	t0 := time.Now()
	if err := e.st.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("plan %s: %s: %w", e.id, what, err)
	}
	e.log.Info("plan step", "plan", e.id, "step", what, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// versionKeys keys every fixed version of the open fixable findings, and
// maybe more: it reads finding_risk_base's rows as stored, without FINAL
// or the plan's scope, so rows a refresh has since replaced or marked gone
// add versions no finding joins (the stage's join takes only the keys of
// its findings' versions). Reading FINAL merged every finding's versions
// to find 148 distinct fixed versions at `make run` size: 3.0 s against
// 2.0 s.
func (e *engine) versionKeys(ctx context.Context) error {
	rows, err := e.st.Query(ctx, "SELECT DISTINCT ecosystem, fixed_version FROM finding_risk_base WHERE "+fixable)
	if err != nil {
		return fmt.Errorf("plan %s: fixed versions: %w", e.id, err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		var eco, v string
		if err := rows.Scan(&eco, &v); err != nil {
			return fmt.Errorf("plan %s: fixed versions: %w", e.id, err)
		}
		key, kerr := version.Key(eco, v)
		msg := ""
		if kerr != nil {
			key, msg = "", uncomparable(eco, v, kerr)
		}
		out = append(out, []any{e.id, eco, v, key, msg})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("plan %s: fixed versions: %w", e.id, err)
	}
	if len(out) == 0 {
		return nil
	}
	if err := e.st.Insert(ctx, "plan_version_keys", []string{"plan_id", "ecosystem", "version", "key", "error"}, out); err != nil {
		return fmt.Errorf("plan %s: version keys: %w", e.id, err)
	}
	return nil
}

// exceptions lists the findings an approved exception unexpired at the
// plan's time covers; it reports whether there were any exceptions to
// look at (then the other steps leave those findings out).
func (e *engine) exceptions(ctx context.Context) (bool, error) {
	rows, err := e.st.Query(ctx, "SELECT count() FROM exceptions_current WHERE effective_status = 'approved' AND expires_at > ?", e.at)
	if err != nil {
		return false, fmt.Errorf("plan %s: exceptions: %w", e.id, err)
	}
	var n uint64
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err == nil {
		err = rows.Err()
	}
	rows.Close()
	if err != nil {
		return false, fmt.Errorf("plan %s: exceptions: %w", e.id, err)
	}
	if n == 0 {
		return false, nil
	}
	args := append([]any{e.id}, e.args...)
	args = append(args, e.at)
	return true, e.exec(ctx, "excepted findings", `INSERT INTO plan_excepted (plan_id, host_id, hostname, ecosystem, package,
		installed_version, advisory, status, fixed_version, exception_id, expires_at, risk_score)
	SELECT ?, f.host_id, f.hostname, f.ecosystem, f.package, f.installed_version, concat(f.source, '/', f.advisory_id),
		f.status, f.fixed_version, x.exception_id, x.expires_at, toFloat64(f.risk_score)
	FROM (SELECT host_id, hostname, source, advisory_id, ecosystem, package, installed_version, status, fixed_version, risk_score
		FROM finding_risk`+e.where()+`) AS f
	INNER JOIN (
		SELECT host_id, source, advisory_id, package, argMax(exception_id, exception_expires_at) AS exception_id,
			max(exception_expires_at) AS expires_at
		FROM finding_exceptions WHERE exception_expires_at > ?
		GROUP BY host_id, source, advisory_id, package
	) AS x ON f.host_id = x.host_id AND f.source = x.source AND f.advisory_id = x.advisory_id AND f.package = x.package`, args...)
}

// notExcepted is the condition that keeps findings out of the steps after
// exceptions (when there were any).
func (e *engine) notExcepted(excepted bool) (string, []any) {
	if !excepted {
		return "", nil
	}
	return "(host_id, concat(source, '/', advisory_id), package) NOT IN (SELECT host_id, advisory, package FROM plan_excepted WHERE plan_id = ?)", []any{e.id}
}

// noFix lists the open findings with no fix. Those are few (at `make run`
// size, 688 of 29M, one per end-of-life host), and finding_risk's filter
// on status applies only after FINAL has merged every finding's versions
// (filtering before it could surface a replaced version): the hosts with
// any stored row without a fix are found first, and the condition on
// host_id, finding_risk_base's first sorting key, limits FINAL to their
// rows (3.1 s → 1.1 s).
func (e *engine) noFix(ctx context.Context, excepted bool) error {
	conds := []string{"NOT (" + fixable + ")",
		"host_id IN (SELECT DISTINCT host_id FROM finding_risk_base WHERE deleted = 0 AND NOT (" + fixable + "))"}
	args := append([]any{e.id}, e.args...)
	if c, a := e.notExcepted(excepted); c != "" {
		conds, args = append(conds, c), append(args, a...)
	}
	return e.exec(ctx, "no-fix findings", `INSERT INTO plan_no_fix (plan_id, host_id, hostname, ecosystem, package,
		installed_version, advisory, status, risk_score)
	SELECT ?, host_id, hostname, ecosystem, package, installed_version, concat(source, '/', advisory_id), status, toFloat64(risk_score)
	FROM finding_risk`+e.where(conds...), args...)
}

// hostBounds cuts the hosts with open fixable findings into batches of
// at most about rowsPerBatch findings: the first and last host id of each.
// A plan of the whole fleet counts each host's stored rows, without FINAL
// (0.4 s at `make run` size, against 1.9 s for its fixable findings): a
// count that includes replaced versions and findings without a fix is at
// least the host's fixable findings, so batches only get smaller, and a
// host without any is in a batch that stages nothing for it. A scoped plan
// counts the findings in its scope, which may be few of a host's.
func (e *engine) hostBounds(ctx context.Context) ([][2]string, error) {
	q := "SELECT host_id, count() FROM finding_risk_base WHERE deleted = 0 GROUP BY host_id ORDER BY host_id"
	if e.scope != "" {
		q = "SELECT host_id, count() FROM finding_risk" + e.where(fixable) + " GROUP BY host_id ORDER BY host_id"
	}
	rows, err := e.st.Query(ctx, q, e.args...)
	if err != nil {
		return nil, fmt.Errorf("plan %s: hosts: %w", e.id, err)
	}
	defer rows.Close()
	var out [][2]string
	var inBatch uint64
	for rows.Next() {
		var h string
		var n uint64
		if err := rows.Scan(&h, &n); err != nil {
			return nil, fmt.Errorf("plan %s: hosts: %w", e.id, err)
		}
		if len(out) == 0 || inBatch+n > rowsPerBatch && inBatch > 0 {
			out, inBatch = append(out, [2]string{h, h}), 0
		}
		out[len(out)-1][1] = h
		inBatch += n
	}
	return out, rows.Err()
}

// stage aggregates the fixable findings per (host, ecosystem, package).
// One level: the advisory dedupe (each advisory once, at its highest risk,
// as the Builder's dedupe) is array work on the group's (advisory, risk,
// kev) triples ar, sorted by advisory with the highest risk first, of
// which the first of each advisory counts (top). The advisories, the KEV
// ones and the risk all come from that one array (sorted by advisory, so
// the lists are sorted): no second and third per-group set.
func (e *engine) stage(ctx context.Context, excepted bool) ([][2]string, error) {
	t0 := time.Now()
	bounds, err := e.hostBounds(ctx)
	if err != nil {
		return nil, err
	}
	e.log.Info("plan step", "plan", e.id, "step", "host batches", "batches", len(bounds), "took", time.Since(t0).Round(time.Millisecond))
	sevs := sqlStrings(severity.All)
	for i, b := range bounds {
		conds := []string{fixable, "host_id >= ?", "host_id <= ?"}
		args := append([]any{e.id}, e.args...)
		args = append(args, b[0], b[1])
		if c, a := e.notExcepted(excepted); c != "" {
			conds, args = append(conds, c), append(args, a...)
		}
		args = append(args, e.id)
		q := `INSERT INTO plan_stage_actions (plan_id, host_id, hostname, owner, os, ring, criticality, internet_facing,
			ecosystem, package, installed_version, target_version, bad_version, advisories, kev_ids, severity,
			risk_reduction, deadline, emergency, emergency_why, findings)
		SELECT ?, host_id, any(hostname), any(owner), any(os), any(ring), any(toInt64(criticality)), any(toUInt8(internet_facing)),
			ecosystem, package, min(installed_version),
			maxIf((k.key, fixed_version), k.error = '').2,
			argMinIf(k.error, fixed_version, k.error != ''),
			arrayMap(x -> x.1, arrayFilter((x, n) -> n = 1, arraySort(x -> (x.1, -x.2), groupArray((adv, risk, kev))) AS ar,
				arrayEnumerateUniq(arrayMap(x -> x.1, ar)) AS first) AS top),
			arrayDistinct(arrayMap(x -> x.1, arrayFilter(x -> x.3 = 1, ar))),
			` + sevs + `[min(if(indexOf(` + sevs + `, severity) = 0, length(` + sevs + `), indexOf(` + sevs + `, severity)))],
			round(arraySum(arrayMap(x -> x.2, top)), 2),
			min(dl),
			toUInt8(countIf(em != '') > 0),
			argMinIf(concat(em, ' (', adv, ')'), adv, em != ''),
			count()
		FROM (
			SELECT host_id, hostname, owner, os, ring, criticality, internet_facing, ecosystem, package, installed_version,
				fixed_version, severity, toUInt8(kev) AS kev, concat(source, '/', advisory_id) AS adv,
				toFloat64(risk_score) AS risk, ` + deadlineSQL(e.pol) + ` AS dl, ` + emergencySQL(e.pol) + ` AS em
			FROM finding_risk` + e.where(conds...) + `
		) AS f
		LEFT ANY JOIN (SELECT ecosystem, version AS fixed_version, key, error FROM plan_version_keys WHERE plan_id = ?) AS k
			USING (ecosystem, fixed_version)
		GROUP BY host_id, ecosystem, package`
		if err := e.exec(ctx, fmt.Sprintf("stage actions (batch %d of %d)", i+1, len(bounds)), q, args...); err != nil {
			return nil, err
		}
	}
	return bounds, nil
}

// deadlineSQL is Deadline (build.go) over finding_risk's columns.
func deadlineSQL(p *policy.Policy) string {
	unknown := p.SLA.Days["unknown"]
	var sevs, days []string
	for _, s := range severity.All {
		d, ok := p.SLA.Days[s]
		if !ok {
			d = unknown
		}
		sevs = append(sevs, s)
		days = append(days, strconv.FormatUint(uint64(d), 10))
	}
	cs := "toDateTime(clock_start, 'UTC')"
	d := fmt.Sprintf("%s + toInt64(transform(severity, %s, [%s], %d)) * 86400", cs, sqlStrings(sevs), strings.Join(days, ", "), unknown)
	if p.SLA.KEVDueDate {
		due := "toDateTime(kev_due_date, 'UTC') + 86399"
		d = fmt.Sprintf("if(kev = 1 AND toDateTime(kev_due_date, 'UTC') > toDateTime(0, 'UTC'), least(%s, greatest(%s, %s)), %s)", d, due, cs, d)
	}
	if esc := p.SLA.EPSSEscalation; esc != nil {
		d = fmt.Sprintf("if(has_epss = 1 AND toFloat64(epss) >= %s, least(%s, %s + %d), %s)",
			strconv.FormatFloat(esc.Threshold, 'g', -1, 64), d, cs, int64(esc.Days)*86400, d)
	}
	return "toDateTime(" + d + ", 'UTC')"
}

// emergencySQL is policy.Emergency.Qualifies over finding_risk's columns:
// why the finding takes the emergency path, ” when it does not.
func emergencySQL(p *policy.Policy) string {
	e := p.Emergency
	var arms []string
	if e.KEV {
		arms = append(arms, "kev = 1", "'KEV'")
	}
	if e.CriticalEPSS != nil {
		_, why := e.Qualifies(false, "critical", *e.CriticalEPSS, true, false)
		arms = append(arms, fmt.Sprintf("severity = 'critical' AND has_epss = 1 AND toFloat64(epss) >= %s", strconv.FormatFloat(*e.CriticalEPSS, 'g', -1, 64)), sqlString(why))
	}
	if e.InternetFacing {
		arms = append(arms, "internet_facing = 1 AND severity IN ('critical', 'high')", "concat(severity, ' on an internet-facing host')")
	}
	if len(arms) == 0 {
		return "''"
	}
	return "multiIf(" + strings.Join(arms, ", ") + ", '')"
}

func sqlString(s string) string {
	var b strings.Builder
	store.QuoteString(&b, s)
	return b.String()
}

func sqlStrings(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = sqlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// units reads one row per (host, emergency) of the staged actions, with
// what grouping needs of the host, and its declared window.
func (e *engine) units(ctx context.Context) ([]*unit, int, error) {
	rows, err := e.st.Query(ctx, `SELECT host_id, emergency, any(hostname), any(ring), any(owner), any(os), any(criticality),
		any(internet_facing), min(deadline), round(sum(risk_reduction), 2)
		FROM plan_stage_actions WHERE plan_id = ? GROUP BY host_id, emergency`, e.id)
	if err != nil {
		return nil, 0, fmt.Errorf("plan %s: units: %w", e.id, err)
	}
	defer rows.Close()
	hosts := map[string]*host{}
	var list []*unit
	for rows.Next() {
		var id, name, ring, owner, os string
		var em, inet uint8
		var crit int64
		u := &unit{}
		if err := rows.Scan(&id, &em, &name, &ring, &owner, &os, &crit, &inet, &u.deadline, &u.risk); err != nil {
			return nil, 0, fmt.Errorf("plan %s: units: %w", e.id, err)
		}
		h, ok := hosts[id]
		if !ok {
			h = &host{Host: policy.Host{ID: id, Hostname: name, Ring: ring, Owner: owner, OS: os, Criticality: int(crit), InternetFacing: inet != 0}}
			hosts[id] = h
		}
		u.h, u.emergency, u.deadline = h, em != 0, u.deadline.UTC()
		u.ringIdx, u.ringKnown = e.pol.RingIndex(ring)
		list = append(list, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("plan %s: units: %w", e.id, err)
	}
	if err := e.hostInfo(ctx, hosts); err != nil {
		return nil, 0, err
	}
	for _, h := range hosts {
		h.group = e.pol.GroupOf(h.Host)
	}
	return list, len(hosts), nil
}

// hostInfo attaches each planned host's tags and declared maintenance
// window from its latest scan (the latest scanned_at, then the highest
// scan_id). scans holds every scan of every host (9 million rows for
// 100,000 hosts over 90 days): the latest scan time of each planned host
// is found over the narrow (host_id, scanned_at) columns first, so tags
// and windows are read and compared for those scans only, not carried
// through an argMax over every scan (3 to 4.5 times faster over the
// 9 million scans of the bench fleet, where it was plan create's largest
// step).
func (e *engine) hostInfo(ctx context.Context, hosts map[string]*host) error {
	rows, err := e.st.Query(ctx, `SELECT host_id, argMax(tags, scan_id), argMax(maintenance_window, scan_id)
		FROM scans WHERE (host_id, scanned_at) IN (
			SELECT host_id, max(scanned_at) FROM scans
			WHERE host_id IN (SELECT DISTINCT host_id FROM plan_stage_actions WHERE plan_id = ?) GROUP BY host_id)
		GROUP BY host_id`, e.id)
	if err != nil {
		return fmt.Errorf("plan %s: host tags and windows: %w", e.id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, win string
		var tags []string
		if err := rows.Scan(&id, &tags, &win); err != nil {
			return fmt.Errorf("plan %s: host tags and windows: %w", e.id, err)
		}
		if h, ok := hosts[id]; ok {
			h.Tags = tags
			h.setWindow(win)
		}
	}
	return rows.Err()
}

// writeHosts stores the scheduled units (plan_hosts).
func (e *engine) writeHosts(ctx context.Context, list []*unit) error {
	epoch := time.Unix(0, 0).UTC()
	rows := make([][]any, 0, min(len(list), insertBatch))
	for i, u := range list {
		start, end, first, ok := epoch, epoch, "", uint8(0)
		if u.ok {
			start, end, first, ok = u.slot.Start.UTC(), u.slot.End.UTC(), u.slot.Start.Format(time.RFC3339), 1
		}
		em := uint8(0)
		if u.emergency {
			em = 1
		}
		win := ""
		if u.h.window != nil {
			win = u.h.windowText
		}
		rows = append(rows, []any{e.id, u.h.ID, em, policy.GroupName(u.h.group), u.h.Ring, u.wave, start, end, ok, u.why, u.place, first, win, u.deadline, u.risk})
		if len(rows) == insertBatch || i == len(list)-1 {
			if err := e.st.Insert(ctx, "plan_hosts", []string{"plan_id", "host_id", "emergency", "group_name", "ring", "wave",
				"window_start", "window_end", "scheduled", "why", "place", "first_window", "host_window", "deadline", "risk_reduction"}, rows); err != nil {
				return fmt.Errorf("plan %s: write hosts: %w", e.id, err)
			}
			rows = rows[:0]
		}
	}
	return nil
}

// final writes plan_actions from the staged actions and plan_hosts, by
// place()'s rules: an action whose fixed version cannot be compared is
// unscheduled with that reason; one whose host has no slot is unscheduled
// with the slot's reason; else scheduled, or late when the window opens
// after its deadline. Rank: emergency first, then deadline, then risk.
func (e *engine) final(ctx context.Context, bounds [][2]string) error {
	if err := e.exec(ctx, "rank actions", `INSERT INTO plan_stage_ranks (plan_id, host_id, ecosystem, package, rank)
	SELECT ?, host_id, ecosystem, package,
		toUInt32(row_number() OVER (ORDER BY emergency DESC, deadline, risk_reduction DESC, host_id, ecosystem, package))
	FROM plan_stage_actions WHERE plan_id = ?`, e.id, e.id); err != nil {
		return err
	}
	approval := 0
	if e.pol.Emergency.ApprovalRequired {
		approval = 1
	}
	rfc := "formatDateTime(a.deadline, '%Y-%m-%dT%H:%i:%SZ', 'UTC')"
	prefix := "if(a.emergency = 1, concat('emergency: ', a.emergency_why, " + sqlString(emergencySuffix(e.pol)) + ", '; '), '')"
	q := `INSERT INTO plan_actions (` + strings.Join(ActionColumns, ", ") + `)
	SELECT a.plan_id, concat('AC-', lower(hex(substring(SHA256(concat(a.plan_id, '\0', a.host_id, '\0', a.ecosystem, '\0', a.package)), 1, 8)))),
		r.rank,
		a.host_id, a.hostname, a.owner, a.os, h.group_name, a.ecosystem, a.package, a.installed_version, a.target_version,
		a.advisories, toUInt32(length(a.kev_ids)), a.kev_ids, a.risk_reduction, a.deadline, a.ring, h.wave,
		if(a.bad_version = '' AND h.scheduled = 1, h.window_start, toDateTime(0, 'UTC')),
		if(a.bad_version = '' AND h.scheduled = 1, h.window_end, toDateTime(0, 'UTC')),
		a.emergency, toUInt8(a.emergency = 1 AND ` + strconv.Itoa(approval) + ` = 1),
		multiIf(a.bad_version != '', 'unscheduled', h.scheduled = 0, 'unscheduled', h.window_start > a.deadline, 'late', 'scheduled'),
		multiIf(a.bad_version != '', a.bad_version,
			h.scheduled = 0, concat('unscheduled: ', h.why, '; ', ` + prefix + `, h.place),
			concat(` + prefix + `, h.place, '; deadline ', ` + rfc + `,
				if(h.window_start > a.deadline, concat(': no window before the deadline, first window ', h.first_window), ''))),
		a.severity
	FROM (SELECT * FROM plan_stage_actions WHERE plan_id = ? AND host_id >= ? AND host_id <= ?) AS a
	INNER JOIN (SELECT host_id, emergency, group_name, wave, window_start, window_end, scheduled, why, place, first_window
		FROM plan_hosts WHERE plan_id = ? AND host_id >= ? AND host_id <= ?) AS h ON a.host_id = h.host_id AND a.emergency = h.emergency
	INNER JOIN (SELECT host_id, ecosystem, package, rank
		FROM plan_stage_ranks WHERE plan_id = ? AND host_id >= ? AND host_id <= ?) AS r
		ON a.host_id = r.host_id AND a.ecosystem = r.ecosystem AND a.package = r.package`
	for i, b := range bounds {
		if err := e.exec(ctx, fmt.Sprintf("write actions (batch %d of %d)", i+1, len(bounds)), q,
			e.id, b[0], b[1], e.id, b[0], b[1], e.id, b[0], b[1]); err != nil {
			return err
		}
	}
	return nil
}

// summary counts the written plan for its plans row (whose no_fix is
// NoFix + EndOfLife: every finding plan_no_fix lists). One statement
// reads each table once (one-row aggregates, cross-joined): a statement
// costs tens of milliseconds on a loaded machine whatever its size.
func (e *engine) summary(ctx context.Context, s *Summary) error {
	rows, err := e.st.Query(ctx, `SELECT a.n, a.scheduled, a.late, a.unscheduled, a.emergency, a.risk,
		nf.no_fix, x.n, nf.eol, nf.eol_hosts, st.findings, h.n
	FROM (SELECT count() AS n, countIf(status = 'scheduled') AS scheduled, countIf(status = 'late') AS late,
			countIf(status = 'unscheduled') AS unscheduled, countIf(emergency = 1) AS emergency, sum(risk_reduction) AS risk
		FROM plan_actions WHERE plan_id = ?) AS a
	CROSS JOIN (SELECT countIf(status != 'end_of_life') AS no_fix, countIf(status = 'end_of_life') AS eol,
			uniqExactIf(host_id, status = 'end_of_life') AS eol_hosts
		FROM plan_no_fix WHERE plan_id = ?) AS nf
	CROSS JOIN (SELECT count() AS n FROM plan_excepted WHERE plan_id = ?) AS x
	CROSS JOIN (SELECT sum(findings) AS findings FROM plan_stage_actions WHERE plan_id = ?) AS st
	CROSS JOIN (SELECT uniqExact(host_id) AS n FROM (
			SELECT DISTINCT host_id FROM plan_stage_actions WHERE plan_id = ?
			UNION ALL SELECT DISTINCT host_id FROM plan_no_fix WHERE plan_id = ?
			UNION ALL SELECT DISTINCT host_id FROM plan_excepted WHERE plan_id = ?)) AS h`,
		e.id, e.id, e.id, e.id, e.id, e.id, e.id)
	if err != nil {
		return fmt.Errorf("plan %s: count: %w", e.id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return fmt.Errorf("plan %s: count: no row: %w", e.id, rows.Err())
	}
	var staged uint64
	if err := rows.Scan(&s.Actions, &s.Scheduled, &s.Late, &s.Unscheduled, &s.Emergency, &s.RiskReduction, &s.NoFix, &s.Excepted, &s.EndOfLife, &s.EndOfLifeHosts, &staged, &s.Hosts); err != nil {
		return fmt.Errorf("plan %s: count: %w", e.id, err)
	}
	s.Findings = staged + s.NoFix + s.EndOfLife + s.Excepted
	return rows.Err()
}

// dropStage removes the plan's working rows (both partitions), also after
// a failure: a retry makes a new plan id.
func (e *engine) dropStage(ctx context.Context) {
	for _, t := range []string{"plan_stage_actions", "plan_stage_ranks", "plan_version_keys"} {
		if err := e.st.Exec(ctx, "ALTER TABLE "+t+" DROP PARTITION ?", e.id); err != nil {
			e.log.Warn("plan: drop working rows", "plan", e.id, "table", t, "err", err)
		}
	}
}
