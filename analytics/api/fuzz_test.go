package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// failingStore answers every statement with an error: a fuzzed request
// that reaches the store shows up as that error, never as data.
type failingStore struct{ store.Store }

var errStoreDown = errors.New("store down (fuzz)")

func (failingStore) Query(context.Context, string, ...any) (store.Rows, error) {
	return nil, errStoreDown
}
func (failingStore) Exec(context.Context, string, ...any) error { return errStoreDown }

func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.status
	}
	return 0
}

// FuzzRequestParams: the query string of a findings, hosts or export
// request is the client's. For any query string, the page is either
// refused with 400 or within bounds (1 <= limit <= MaxPage, limit=max is
// MaxPage, no limit is DefaultPage, 0 <= offset <= maxOffset, each the
// number sent); the findings filter is refused with 400 or renders its
// WHERE clause; and a HEAD on an export checks the format and filter
// without running anything (the store here fails every statement).
func FuzzRequestParams(f *testing.F) {
	for _, q := range []string{"", "limit=max", "limit=10&offset=20", "limit=0", "limit=-1", "limit=10001", "limit=+5", "limit=0x10",
		"offset=1000001", "offset=99999999999999999999", "limit=max&limit=3", "limit=%ZZ", "limit=1;offset=2",
		"severity=critical,high&kev=true&min-risk=7.5", "min_risk=NaN", "min-risk=1e400", "kev=maybe", "severity=bogus",
		"ring=prod&owner=team%27a&os=Debian:12&host=h1", "format=csv", "format=parquet&severity=low", "format=xml", "format=arrow-stream", "format=",
	} {
		f.Add(q)
	}
	s := &server{cfg: Config{Store: failingStore{}, DefaultPage: 100, MaxPage: 10000}}
	f.Fuzz(func(t *testing.T, raw string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/api/v1/findings", RawQuery: raw}, Header: http.Header{}}
		q := r.URL.Query()

		p, err := s.page(r)
		if err != nil {
			if statusOf(err) != http.StatusBadRequest {
				t.Fatalf("page(%q): %v, want a 400", raw, err)
			}
		} else {
			if p.Limit < 1 || p.Limit > s.cfg.MaxPage || p.Offset < 0 || p.Offset > maxOffset {
				t.Fatalf("page(%q) = %+v: out of bounds", raw, p)
			}
			switch l := q.Get("limit"); l {
			case "":
				if p.Limit != s.cfg.DefaultPage {
					t.Fatalf("page(%q): limit %d, want the default %d", raw, p.Limit, s.cfg.DefaultPage)
				}
			case "max":
				if p.Limit != s.cfg.MaxPage {
					t.Fatalf("page(%q): limit %d, want MaxPage", raw, p.Limit)
				}
			default:
				if n, err := strconv.Atoi(l); err != nil || n != p.Limit {
					t.Fatalf("page(%q): limit %d is not the %q sent", raw, p.Limit, l)
				}
			}
			if o := q.Get("offset"); o != "" {
				if n, err := strconv.Atoi(o); err != nil || n != p.Offset {
					t.Fatalf("page(%q): offset %d is not the %q sent", raw, p.Offset, o)
				}
			}
		}

		get := param(r)
		for _, name := range []string{"min-risk", "severity", "kev"} {
			want := q.Get(name)
			if want == "" {
				want = q.Get(strings.ReplaceAll(name, "-", "_"))
			}
			if got := get(name); got != want {
				t.Fatalf("param(%q)(%s) = %q, want %q", raw, name, got, want)
			}
		}
		if fl, err := risk.ParseFilter(get); err == nil {
			// The client's values travel as bound arguments, never as SQL text.
			where, args := fl.Where()
			if n := strings.Count(where, "?"); n != len(args) {
				t.Fatalf("filter of %q: %d placeholders in %q for %d arguments", raw, n, where, len(args))
			}
		}

		r.Method = http.MethodHead
		w := httptest.NewRecorder()
		err = s.export(w, r)
		format := q.Get("format")
		if format == "" {
			format = "json"
		}
		_, ferr := risk.ParseFilter(get)
		switch {
		case err == nil:
			if !slices.Contains(export.Formats, format) || ferr != nil || w.Code != http.StatusOK || w.Header().Get("Content-Type") == "" {
				t.Fatalf("HEAD export?%s: %d %q, format %q, filter error %v", raw, w.Code, w.Header().Get("Content-Type"), format, ferr)
			}
		case errors.Is(err, errStoreDown):
			t.Fatalf("HEAD export?%s ran the export", raw)
		case statusOf(err) != http.StatusBadRequest:
			t.Fatalf("HEAD export?%s: %v, want a 400", raw, err)
		}
	})
}

// FuzzAuthorization: the Authorization header is the client's. Whatever it
// holds, authentication never lets a request through when the token store
// cannot answer (fail closed), and anything that is not "Bearer <token>"
// is a 401 without asking the store.
func FuzzAuthorization(f *testing.F) {
	tok := "pgt_0123456789ab_" + strings.Repeat("A", 43)
	for _, h := range []string{"", "Bearer " + tok, "bearer " + tok, "BEARER  " + tok + " ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer pgt_", tok, "Bearer " + tok + "\x00"} {
		f.Add(h)
	}
	s := &server{cfg: Config{Store: failingStore{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tokens: auth.New(failingStore{}, auth.Options{CacheTTL: -1})}}
	f.Fuzz(func(t *testing.T, h string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/api/v1/findings"}, Header: http.Header{}}
		r = r.WithContext(context.Background())
		r.Header.Set("Authorization", h)
		got, err := s.authenticate(r)
		if err == nil || got.Role.Valid() {
			t.Fatalf("Authorization %q let a request through with the store down: %+v", h, got)
		}
		scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		bearer := ok && strings.EqualFold(scheme, "Bearer") && secret != ""
		reached := errors.Is(err, errStoreDown)
		switch {
		case !bearer && (reached || statusOf(err) != http.StatusUnauthorized):
			t.Fatalf("Authorization %q is no bearer token: %v, want a 401 without a store query", h, err)
		case reached && statusOf(err) != 0:
			t.Fatalf("Authorization %q: the store failure answered %d, want a server error", h, statusOf(err))
		case !reached && statusOf(err) != http.StatusUnauthorized:
			t.Fatalf("Authorization %q: %v, want a 401", h, err)
		}
	})
}
