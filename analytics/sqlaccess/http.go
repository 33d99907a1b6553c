package sqlaccess

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/patchgrid/patchgrid/analytics/export"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Request is the body of POST /api/v1/sql.
type Request struct {
	Query          string `json:"query"`
	MaxRows        int    `json:"max_rows,omitempty"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty"`
}

// Response is its answer: the result, with values as JSON (export.JSONSafe:
// times RFC 3339 UTC, NaN and infinities null).
type Response struct {
	Columns   []store.Column `json:"columns"`
	Rows      [][]any        `json:"rows"`
	Truncated bool           `json:"truncated"`
	Error     string         `json:"error,omitempty"`
}

// maxRequestBytes bounds a request body: a query, not a data upload.
const maxRequestBytes = 1 << 20

// Handler serves POST /api/v1/sql on st: the process that holds the
// embedded store runs compliance officers' queries for `patchgrid sql`
// (and any other client), under the same checks and limits. base caps what
// a request may ask for: a request can lower its limits, never raise them.
// Authentication is the API's, around this handler.
func Handler(st store.Store, base Options, log *slog.Logger) http.Handler {
	base = base.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, Response{Error: "use POST with a JSON body {\"query\": ...}"})
			return
		}
		var req Request
		dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, Response{Error: "bad request body: " + err.Error()})
			return
		}
		opt := base
		if req.MaxRows > 0 && req.MaxRows < opt.MaxRows {
			opt.MaxRows = req.MaxRows
		}
		if t := time.Duration(req.TimeoutSeconds) * time.Second; t > 0 && t < opt.Timeout {
			opt.Timeout = t
		}
		stmt, err := Check(req.Query)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, Response{Error: err.Error()})
			return
		}
		res, err := stmt.Run(r.Context(), st, opt)
		if err != nil {
			// The engine's message is what a SQL author needs (unknown
			// column, syntax error, limit hit); the statement is theirs.
			log.Info("sql query failed", "err", truncate(err.Error(), 500))
			writeJSON(w, http.StatusUnprocessableEntity, Response{Error: engineMessage(err)})
			return
		}
		writeJSON(w, http.StatusOK, Response{Columns: res.Columns, Rows: jsonRows(res.Rows), Truncated: res.Truncated})
	})
}

// engineMessage is the engine's exception text without the statement the
// store appends (the client sent it and knows it).
func engineMessage(err error) string {
	var se *store.Error
	if errors.As(err, &se) && se.Err != nil {
		return se.Err.Error()
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// jsonRows makes values JSON-safe the way every JSON output of patchgrid
// does (export.JSONSafe).
func jsonRows(rows [][]any) [][]any {
	for _, row := range rows {
		for i, v := range row {
			row[i] = export.JSONSafe(v)
		}
	}
	if rows == nil {
		rows = [][]any{}
	}
	return rows
}

// Remote runs a query through a serving process's POST /api/v1/sql. token
// is the API bearer token ("" when the API has none configured).
func Remote(ctx context.Context, client *http.Client, baseURL, token string, req Request) (*Result, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	url := strings.TrimRight(baseURL, "/") + "/api/v1/sql"
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("sql via %s: %w", url, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("sql via %s (retry may help once the server is up): %w", url, err)
	}
	defer resp.Body.Close()
	var out Response
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(&out); err != nil {
		return nil, fmt.Errorf("sql via %s: HTTP %d, unreadable answer: %w", url, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := out.Error
		if msg == "" {
			msg = resp.Status
		}
		return nil, fmt.Errorf("sql via %s: HTTP %d: %s", url, resp.StatusCode, msg)
	}
	return &Result{Columns: out.Columns, Rows: out.Rows, Truncated: out.Truncated}, nil
}
