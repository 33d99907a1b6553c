package risk

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// ValueFields are the fields Values lists, in the order the Grafana data
// source's variable editor offers them.
var ValueFields = []string{"ring", "owner", "os", "severity", "advisory"}

// valuesSQL lists the distinct values of each field in the current data:
// ring, owner and os of every scanned host (kpi_hosts, the hosts the
// findings and host_risk join), severity and advisory of open findings
// (finding_risk). Severities come in rank order, everything else sorted.
var valuesSQL = map[string]string{
	"ring":     "SELECT DISTINCT ring AS value FROM kpi_hosts WHERE ring != '' ORDER BY value LIMIT ?",
	"owner":    "SELECT DISTINCT owner AS value FROM kpi_hosts WHERE owner != '' ORDER BY value LIMIT ?",
	"os":       "SELECT DISTINCT os AS value FROM kpi_hosts WHERE os != '' ORDER BY value LIMIT ?",
	"severity": "SELECT severity AS value FROM finding_risk GROUP BY severity ORDER BY indexOf(['critical', 'high', 'medium', 'low', 'none', 'unknown'], severity), severity LIMIT ?",
	"advisory": "SELECT DISTINCT advisory_id AS value FROM finding_risk WHERE startsWith(advisory_id, ?) ORDER BY value LIMIT ?",
}

// MaxValues caps one Values answer: a template variable with more options
// than this is unusable anyway (advisories: narrow with a prefix).
const MaxValues = 10000

// Values returns the distinct values of field (one of ValueFields) in the
// stored data, at most limit (1..MaxValues) of them. prefix narrows
// advisories (e.g. "CVE-2024-"); other fields take none.
func Values(ctx context.Context, st store.Store, field, prefix string, limit int) ([]string, error) {
	q, ok := valuesSQL[field]
	if !ok {
		return nil, fmt.Errorf("unknown field %q (want one of %s)", field, strings.Join(ValueFields, ", "))
	}
	if limit < 1 || limit > MaxValues {
		return nil, fmt.Errorf("limit %d out of range 1..%d", limit, MaxValues)
	}
	args := []any{limit}
	if field == "advisory" {
		args = []any{prefix, limit}
	} else if prefix != "" {
		return nil, fmt.Errorf("field %s takes no prefix", field)
	}
	rows, err := st.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("values of %s: %w", field, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("values of %s: %w", field, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("values of %s: %w", field, err)
	}
	return slices.Clip(out), nil
}

// SLA states of an open finding as alert rules count them: its sla_state
// (open: not yet due; overdue), except that a finding of a stale host is
// "stale" and, with exceptions honoured (Filter.Exceptions), a finding an
// exception covers is "accepted" (the states of the KPIs, migration 0016).
var SLAStates = []string{"open", "overdue", "accepted", "stale"}

// CountFindings counts the open findings f selects, only those in SLA state
// slaState (SLAStates) when it is not empty. It is the number alert rules
// watch, e.g. overdue findings in CISA KEV.
func CountFindings(ctx context.Context, st store.Store, f Filter, slaState string) (uint64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	where, args := f.Where()
	if slaState != "" {
		if !slices.Contains(SLAStates, slaState) {
			return 0, fmt.Errorf("unknown SLA state %q (want %s)", slaState, strings.Join(SLAStates, ", "))
		}
		state := "multiIf(stale = 1, 'stale', sla_state)"
		if exc, _ := ParseExceptions(f.Exceptions); exc == ExceptionsHonoured {
			state = "multiIf(stale = 1, 'stale', accepted = 1, 'accepted', sla_state)"
		}
		if where == "" {
			where = " WHERE " + state + " = ?"
		} else {
			where += " AND " + state + " = ?"
		}
		args = append(args, slaState)
	}
	rows, err := st.Query(ctx, "SELECT toUInt64(count()) FROM finding_risk"+where, args...)
	if err != nil {
		return 0, fmt.Errorf("count findings: %w", err)
	}
	defer rows.Close()
	var n uint64
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("count findings: %w", err)
		}
		return 0, fmt.Errorf("count findings: no row")
	}
	if err := rows.Scan(&n); err != nil {
		return 0, fmt.Errorf("count findings: %w", err)
	}
	return n, rows.Err()
}
