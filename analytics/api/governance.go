package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/exception"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/analytics/sqlaccess"
)

// governanceRoutes are the compliance officers' endpoints: risk exceptions
// (analytics/exception) and read-only SQL (analytics/sqlaccess).
//
// Exceptions: reading needs a viewer, requesting an analyst, deciding
// (approve, reject, revoke) an approver. The requester and approver are the
// caller's token name, never a name in the body, so the four-eyes rule
// holds between tokens. SQL needs an analyst: it reads every table.
func (s *server) governanceRoutes() []Route {
	log := s.cfg.Audit
	if log == nil {
		log = audit.New(s.cfg.Store)
	}
	// The active policy's exceptions.max_duration, when set, wins over
	// ExceptionMaxDuration (issue 14: the policy caps expiries).
	book := exception.New(s.cfg.Store, log, exception.Config{MaxDuration: s.cfg.ExceptionMaxDuration,
		Cap: func(ctx context.Context) (time.Duration, error) { return policy.ExceptionCap(ctx, s.cfg.Store) }})
	actor := func(r *http.Request) string { return Caller(r).Name }
	need := map[string]auth.Role{"read": auth.Viewer, "request": auth.Analyst, "decide": auth.Approver}
	var out []Route
	for _, er := range book.Routes(actor) {
		h := er.Handler
		out = append(out, Route{Pattern: er.Method + " " + er.Pattern, Role: need[er.Need], Handler: func(w http.ResponseWriter, r *http.Request) error {
			return exceptionError(h(w, r))
		}})
	}
	sqlH := sqlaccess.Handler(s.cfg.Store, s.cfg.SQL, s.cfg.Logger)
	out = append(out, Route{Pattern: "POST /api/v1/sql", Role: auth.Analyst, Handler: func(w http.ResponseWriter, r *http.Request) error {
		sqlH.ServeHTTP(w, r)
		return nil
	}})
	return out
}

// exceptionError gives the exception rules' refusals their status and
// message; other errors stay the store's (logged, answered with a request id).
func exceptionError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, exception.ErrBadRequest):
		return &httpError{status: http.StatusBadRequest, msg: err.Error()}
	case errors.Is(err, exception.ErrInvalid):
		return &httpError{status: http.StatusUnprocessableEntity, msg: err.Error()}
	case errors.Is(err, exception.ErrNotFound):
		return &httpError{status: http.StatusNotFound, msg: err.Error()}
	}
	return err
}
