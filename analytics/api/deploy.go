package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/deploy"
)

// planStatus is GET /api/v1/plans/{id}/status ("current" names the latest
// plan): analytics/deploy's Report, as `patchgrid plan status --format
// json` prints it, with ?due=true the actions that may run now. Reading
// the status evaluates the gates and holds: a decision that changed since
// the last evaluation is recorded (gate_decisions, fix_holds and the audit
// trail) in the caller's name, so no client ever sees a gate decision the
// trail does not hold.
func (s *server) planStatus(w http.ResponseWriter, r *http.Request) error {
	due := false
	if v := r.URL.Query().Get("due"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest(fmt.Errorf("due=%q: want true or false", v))
		}
		due = b
	}
	sum, err := s.planByID(r)
	if err != nil {
		return err
	}
	log := s.cfg.Audit
	if log == nil {
		log = audit.New(s.cfg.Store)
	}
	rep, err := deploy.Status(r.Context(), deploy.Config{Store: s.cfg.Store, Audit: log, Actor: "api:" + Caller(r).Name, Log: s.cfg.Logger}, sum.ID, due)
	if errors.Is(err, deploy.ErrNotFound) {
		return notFound("plan %q not found", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
