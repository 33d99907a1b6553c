package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// TypePlan reads a remediation plan (analytics/plan), the current one
// unless planId names another. Its own fields:
//
//	planView  "waves" (default: the next windows and what they close),
//	          "fixes" (grouped by package and target version) or "actions"
//	planId    a plan id; "" = the current plan
//
// actions take the findings filters (severity, kev, ring, owner, os,
// host, minRisk) and limit, applied as the API applies them.
const TypePlan = "plan"

// PlanViews are the values of planView.
var PlanViews = []string{"waves", "fixes", "actions"}

type planQuery struct {
	View   string `json:"planView"`
	PlanID string `json:"planId"`
}

func init() { registerQueryType(TypePlan, queryHandler{check: checkPlan, run: runPlan}) }

func parsePlanQuery(raw []byte) (planQuery, error) {
	var pq planQuery
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &pq); err != nil {
			return pq, fmt.Errorf("query JSON: %w", err)
		}
	}
	if pq.View == "" {
		pq.View = PlanViews[0]
	}
	if !slices.Contains(PlanViews, pq.View) {
		return pq, fmt.Errorf("unknown plan view %q (want one of %s)", pq.View, strings.Join(PlanViews, ", "))
	}
	return pq, nil
}

func checkPlan(q *Query, raw []byte) error {
	if _, err := parsePlanQuery(raw); err != nil {
		return err
	}
	if q.Limit == 0 {
		q.Limit = defaultLimit
	}
	if q.Limit < 0 || q.Limit > maxLimit {
		return fmt.Errorf("limit %d out of range 1..%d", q.Limit, maxLimit)
	}
	_, err := q.findingsFilter()
	return err
}

func runPlan(ctx context.Context, st store.Store, q Query, raw []byte, _ backend.TimeRange) (*data.Frame, error) {
	pq, _ := parsePlanQuery(raw)
	sum, err := plan.Get(ctx, st, pq.PlanID)
	if errors.Is(err, plan.ErrNotFound) {
		if pq.PlanID != "" {
			return nil, err // the panel's to fix, not downstream
		}
		// No plan yet: an empty panel that says so, not an error.
		fr := data.NewFrame("plan")
		fr.Meta = &data.FrameMeta{Notices: []data.Notice{{Severity: data.NoticeSeverityInfo, Text: "no remediation plan yet (patchgrid plan create)"}}}
		return fr, nil
	}
	if err != nil {
		return nil, backend.DownstreamError(err)
	}
	var fr *data.Frame
	switch pq.View {
	case "waves":
		waves, err := plan.Waves(ctx, st, sum.ID)
		if err != nil {
			return nil, backend.DownstreamError(err)
		}
		var (
			num, hosts, acts []int64
			ring             []string
			emergency        []bool
			opens, closes    []time.Time
			risk             []float64
		)
		for _, w := range waves {
			num, ring, emergency = append(num, int64(w.Wave)), append(ring, w.Ring), append(emergency, w.Emergency)
			opens, closes = append(opens, w.Opens.UTC()), append(closes, w.Closes.UTC())
			hosts, acts, risk = append(hosts, int64(w.Hosts)), append(acts, int64(w.Actions)), append(risk, w.RiskReduction)
		}
		fr = data.NewFrame("plan waves",
			data.NewField("wave", nil, num), data.NewField("ring", nil, ring), data.NewField("emergency", nil, emergency),
			data.NewField("opens", nil, opens), data.NewField("closes", nil, closes), data.NewField("hosts", nil, hosts),
			data.NewField("actions", nil, acts), data.NewField("risk_reduction", nil, risk))
	case "fixes":
		fixes, err := plan.Fixes(ctx, st, sum.ID, q.Limit)
		if err != nil {
			return nil, backend.DownstreamError(err)
		}
		var (
			eco, pkg, target     []string
			hosts, advs, kev, un []int64
			risk                 []float64
			emergency            []bool
			first                []*time.Time
		)
		for _, f := range fixes {
			eco, pkg, target = append(eco, f.Ecosystem), append(pkg, f.Package), append(target, f.TargetVersion)
			hosts, advs, kev, un = append(hosts, int64(f.Hosts)), append(advs, int64(f.Advisories)), append(kev, int64(f.KEVAdvisories)), append(un, int64(f.Unscheduled))
			risk, emergency = append(risk, f.RiskReduction), append(emergency, f.Emergency)
			var fw *time.Time
			if !f.FirstWindow.IsZero() {
				t := f.FirstWindow.UTC()
				fw = &t
			}
			first = append(first, fw)
		}
		fr = data.NewFrame("plan fixes",
			data.NewField("ecosystem", nil, eco), data.NewField("package", nil, pkg), data.NewField("target_version", nil, target),
			data.NewField("hosts", nil, hosts), data.NewField("advisories", nil, advs), data.NewField("kev_advisories", nil, kev),
			data.NewField("risk_reduction", nil, risk), data.NewField("emergency", nil, emergency),
			data.NewField("first_window", nil, first), data.NewField("unscheduled", nil, un))
	default: // actions
		f, _ := q.findingsFilter()
		rows, err := plan.Actions(ctx, st, sum.ID, f, &risk.Page{Limit: q.Limit})
		if err != nil {
			return nil, backend.DownstreamError(err)
		}
		t, err := export.ReadTable(rows, 0)
		if err != nil {
			return nil, backend.DownstreamError(fmt.Errorf("plan actions: %w", err))
		}
		if fr, err = tableFrame("plan actions", t); err != nil {
			return nil, err
		}
	}
	if fr.Meta == nil {
		fr.Meta = &data.FrameMeta{}
	}
	fr.Meta.Notices = append(fr.Meta.Notices, data.Notice{Severity: data.NoticeSeverityInfo,
		Text: fmt.Sprintf("plan %s, created %s", sum.ID, sum.CreatedAt.UTC().Format(time.RFC3339))})
	return fr, nil
}
