package api

import (
	"errors"
	"net/http"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/risk"
)

// Remediation plans (analytics/plan), read-only: the plans, one plan
// ("current" names the latest), and a plan's actions, paged, with the
// findings filters (severity, kev, ring, owner, os, host, min-risk; see
// plan.ActionsSQL for how they apply to actions).

func (s *server) planList(w http.ResponseWriter, r *http.Request) error {
	p, err := s.page(r)
	if err != nil {
		return err
	}
	list, err := plan.List(r.Context(), s.cfg.Store, p.Limit, p.Offset)
	if err != nil {
		return err
	}
	if list == nil {
		list = []plan.Summary{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"plans": list})
}

// planByID reads the plan the path names; "current" is the latest.
func (s *server) planByID(r *http.Request) (plan.Summary, error) {
	id := r.PathValue("id")
	if id == "current" {
		id = ""
	}
	sum, err := plan.Get(r.Context(), s.cfg.Store, id)
	if errors.Is(err, plan.ErrNotFound) {
		return sum, notFound("plan %q not found", r.PathValue("id"))
	}
	return sum, err
}

func (s *server) planGet(w http.ResponseWriter, r *http.Request) error {
	sum, err := s.planByID(r)
	if err != nil {
		return err
	}
	fixes, err := plan.Fixes(r.Context(), s.cfg.Store, sum.ID, 100)
	if err != nil {
		return err
	}
	waves, err := plan.Waves(r.Context(), s.cfg.Store, sum.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"plan": sum, "fixes": fixes, "waves": waves})
}

func (s *server) planActions(w http.ResponseWriter, r *http.Request) error {
	f, err := risk.ParseFilter(param(r))
	if err != nil {
		return badRequest(err)
	}
	p, err := s.page(r)
	if err != nil {
		return err
	}
	sum, err := s.planByID(r)
	if err != nil {
		return err
	}
	rows, err := plan.Actions(r.Context(), s.cfg.Store, sum.ID, f, &p)
	if err != nil {
		return err
	}
	t, err := export.ReadTable(rows, 0)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"plan_id": sum.ID, "limit": p.Limit, "offset": p.Offset, "actions": t.Records()})
}
