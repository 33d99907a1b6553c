package api

import (
	"net/http"

	"github.com/patchgrid/patchgrid/analytics/kpi"
)

// deployKPIList lists the deployment KPIs (kpi.DeployKPIs): name, view,
// summary, and the dimensions and value column each one filters on.
func (s *server) deployKPIList(w http.ResponseWriter, _ *http.Request) error {
	type item struct {
		Name        string   `json:"name"`
		View        string   `json:"view"`
		Summary     string   `json:"summary"`
		Dimensions  []string `json:"dimensions,omitempty"`
		ValueColumn string   `json:"value_column"`
	}
	var out []item
	for _, k := range kpi.DeployKPIs() {
		out = append(out, item{k.Name, k.View, k.Summary, k.Dimensions, k.ValueColumn})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"kpis": out})
}

// deployKPI reads one deployment KPI: ?dimension= keeps one breakdown
// (views with a dimension column), ?value= the rows whose value column
// (dim_value, ring, stage or plan_id) equals it.
func (s *server) deployKPI(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	k, err := kpi.LookupDeploy(name)
	if err != nil {
		return &httpError{status: http.StatusNotFound, msg: err.Error()}
	}
	q := r.URL.Query()
	query := kpi.DeployQuery{Dimension: q.Get("dimension"), Value: q.Get("value")}
	if _, _, err := k.SQL(query); err != nil {
		return badRequest(err)
	}
	t, err := kpi.RunDeploy(r.Context(), s.cfg.Store, name, query)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"kpi": name, "view": k.View, "rows": t.Records()})
}
