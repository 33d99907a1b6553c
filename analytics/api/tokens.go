package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"net/http"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/auth"
)

// tokenView is a token as the API shows it: never its hash.
type tokenView struct {
	auth.Token
	State string `json:"state"`
}

func (s *server) tokenList(w http.ResponseWriter, r *http.Request) error {
	toks, err := s.cfg.Tokens.List(r.Context())
	if err != nil {
		return err
	}
	now := time.Now()
	out := make([]tokenView, len(toks))
	for i, t := range toks {
		out[i] = tokenView{t, t.State(now)}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// maxBody bounds a request body: token and other write requests are small.
const maxBody = 64 << 10

// tokenCreate is POST /api/v1/tokens {"name":..., "role":..., "expires":"90d"}:
// the answer holds the token, the only time it is shown.
func (s *server) tokenCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name    string `json:"name"`
		Role    string `json:"role"`
		Expires string `json:"expires"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest(errors.New("body: want a JSON object with name, role and expires"))
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return badRequest(err)
	}
	if req.Expires == "" {
		req.Expires = "90d"
	}
	ttl, err := policy.ParseSpan(req.Expires)
	if err != nil {
		return badRequest(fmt.Errorf("expires: %w", err))
	}
	if ttl > auth.MaxTTL {
		return badRequest(fmt.Errorf("expires: at most %d days", int(auth.MaxTTL.Hours()/24)))
	}
	if strings.TrimSpace(req.Name) == "" {
		return badRequest(errors.New("name is required"))
	}
	secret, tok, err := s.cfg.Tokens.Create(r.Context(), auth.CreateRequest{Name: req.Name, Role: role, TTL: ttl, CreatedBy: "token:" + Caller(r).ID + " (" + Caller(r).Name + ")"})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "id": tok.ID, "name": tok.Name, "role": tok.RoleName, "expires_at": tok.ExpiresAt})
}

func (s *server) tokenRevoke(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	tok, err := s.cfg.Tokens.Revoke(r.Context(), id, "token:"+Caller(r).ID+" ("+Caller(r).Name+")")
	if errors.Is(err, auth.ErrUnknown) {
		return notFound("token %q not found", id)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tokenView{tok, tok.State(time.Now())})
}
