package exception

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Actor names who makes an API request: the authenticated token's name.
// The requester and approver of an exception come from it, never from the
// request body, so that nobody approves their own request under another name.
type Actor func(*http.Request) string

// ErrBadRequest marks a malformed request (body or parameters); with
// ErrInvalid (a rule refused it) and ErrNotFound, it is what the API turns
// into a 400, 422 or 404 with the error's text. Anything else is the
// store's failure: the API logs it and tells the client only a request id.
var ErrBadRequest = errors.New("bad request")

// Handler serves one endpoint; it writes the answer, or returns the error
// for the API to answer with.
type Handler func(http.ResponseWriter, *http.Request) error

// Route is one endpoint of /api/v1/exceptions. Need says what the caller
// must be allowed to do: "read", "request" or "decide" (approve, reject,
// revoke); the API maps that to its roles.
type Route struct {
	Method, Pattern, Need string
	Handler               Handler
}

// Routes are the exception endpoints:
//
//	GET  /api/v1/exceptions               ?status=&advisory=&expiring=14d (days)
//	POST /api/v1/exceptions               {"advisory","host"|"group"|"package","owner","reason","compensating_control","expires_days"}
//	GET  /api/v1/exceptions/{id}
//	POST /api/v1/exceptions/{id}/{action} approve, reject or revoke; body {"reason"} optional
func (b *Book) Routes(actor Actor) []Route {
	return []Route{
		{"GET", "/api/v1/exceptions", "read", b.handleList},
		{"POST", "/api/v1/exceptions", "request", func(w http.ResponseWriter, r *http.Request) error { return b.handleRequest(w, r, actor) }},
		{"GET", "/api/v1/exceptions/{id}", "read", b.handleGet},
		{"POST", "/api/v1/exceptions/{id}/{action}", "decide", func(w http.ResponseWriter, r *http.Request) error { return b.handleDecide(w, r, actor) }},
	}
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

func (b *Book) handleList(w http.ResponseWriter, r *http.Request) error {
	var f Filter
	q := r.URL.Query()
	if s := q.Get("status"); s != "" {
		st, err := ParseStatus(s)
		if err != nil {
			return badRequest("%v", err)
		}
		f.Status = st
	}
	f.Advisory = q.Get("advisory")
	if s := q.Get("expiring"); s != "" {
		days, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil || days <= 0 {
			return badRequest("expiring=%q: want a number of days, e.g. 14d", s)
		}
		f.ExpiringWithin = time.Duration(days * float64(24*time.Hour))
	}
	list, err := b.List(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []Exception{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"exceptions": list})
}

func (b *Book) handleGet(w http.ResponseWriter, r *http.Request) error {
	e, err := b.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

type requestBody struct {
	Advisory            string  `json:"advisory"`
	Host                string  `json:"host"`
	Group               string  `json:"group"`
	Package             string  `json:"package"`
	Owner               string  `json:"owner"`
	Reason              string  `json:"reason"`
	CompensatingControl string  `json:"compensating_control"`
	ExpiresDays         float64 `json:"expires_days"`
}

func (b *Book) handleRequest(w http.ResponseWriter, r *http.Request, actor Actor) error {
	var body requestBody
	if err := decode(r, &body); err != nil {
		return err
	}
	e, err := b.Request(r.Context(), Request{
		Advisory: body.Advisory, Host: body.Host, Group: body.Group, Package: body.Package,
		Owner: body.Owner, Reason: body.Reason, CompensatingControl: body.CompensatingControl,
		Requester: actor(r), ExpiresIn: time.Duration(body.ExpiresDays * float64(24*time.Hour)),
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, e)
}

func (b *Book) handleDecide(w http.ResponseWriter, r *http.Request, actor Actor) error {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &body); err != nil {
			return err
		}
	}
	id, who := r.PathValue("id"), actor(r)
	var (
		e   Exception
		err error
	)
	switch r.PathValue("action") {
	case "approve":
		e, err = b.Approve(r.Context(), id, who)
	case "reject":
		e, err = b.Reject(r.Context(), id, who, body.Reason)
	case "revoke":
		e, err = b.Revoke(r.Context(), id, who, body.Reason)
	default:
		return fmt.Errorf("%w: no action %q: approve, reject or revoke", ErrNotFound, r.PathValue("action"))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}
