package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/patchgrid/patchgrid/analytics/match"
)

// verdicts serves what package findings cannot show (analytics/match
// verdicts.go, the same statements as the run summary): hosts whose last
// scan is older than stale_after (default 72h; never patched or
// compliant), hosts on an end-of-life release, and packages matching could
// not judge, by reason.
func (s *server) verdicts(w http.ResponseWriter, r *http.Request) error {
	after := match.DefaultStaleAfter
	if v := param(r)("stale_after"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return badRequest(fmt.Errorf("stale_after %q: want a positive duration such as 72h", v))
		}
		after = d
	}
	ctx := r.Context()
	stale, err := match.StaleHosts(ctx, s.cfg.Store, time.Now(), after)
	if err != nil {
		return err
	}
	eol, err := match.EOLFindings(ctx, s.cfg.Store, "")
	if err != nil {
		return err
	}
	unmatched, err := match.UnmatchedPackages(ctx, s.cfg.Store, "")
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"stale_after": after.String(), "stale_hosts": nonNilSlice(stale), "eol_findings": nonNilSlice(eol), "unmatched": nonNilSlice(unmatched),
	})
}

// nonNilSlice keeps empty lists [] in JSON, not null.
func nonNilSlice[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
