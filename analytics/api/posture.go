package api

import (
	"errors"
	"net/http"
	"slices"

	"github.com/patchgrid/patchgrid/analytics/compliance/frameworks"
	"github.com/patchgrid/patchgrid/analytics/kpi"
)

// posture answers GET /api/v1/posture?framework=&dimension=&value=: the
// compliance frameworks loaded, and per framework and group the posture
// (compliance_posture) and its trend (compliance_posture_trend), as of the
// last refresh. The same reads as the compliance report's posture section.
func (s *server) posture(w http.ResponseWriter, r *http.Request) error {
	get := param(r)
	q := frameworks.Query{Framework: get("framework"), Dimension: get("dimension"), Value: get("value")}
	if q.Dimension != "" && !slices.Contains(kpi.Dimensions, q.Dimension) {
		return badRequest(errors.New("unknown dimension " + q.Dimension))
	}
	loaded, err := frameworks.List(r.Context(), s.cfg.Store)
	if err != nil {
		return err
	}
	p, err := frameworks.Posture(r.Context(), s.cfg.Store, q)
	if errors.Is(err, frameworks.ErrUnknownFramework) {
		return notFound("%v", err)
	}
	if err != nil {
		return err
	}
	t, err := frameworks.Trend(r.Context(), s.cfg.Store, q)
	if err != nil {
		return err
	}
	type framework struct {
		ID         string            `json:"framework"`
		Title      string            `json:"title"`
		Policy     string            `json:"policy"`
		Scope      string            `json:"scope"`
		Source     string            `json:"source"`
		Days       map[string]uint32 `json:"sla_days"`
		KEVDueDate bool              `json:"kev_due_date"`
	}
	var fws []framework
	for _, l := range loaded {
		if q.Framework == "" || q.Framework == l.ID {
			fws = append(fws, framework{l.ID, l.Title, l.Policy, l.Scope, l.Source, l.Days, l.KEVDueDate})
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"frameworks": fws, "posture": p.Records(), "trend": t.Records()})
}
