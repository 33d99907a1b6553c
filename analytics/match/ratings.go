package match

import (
	"context"
	"fmt"
	"strings"

	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// RecordKey names one advisory record.
type RecordKey struct{ Source, AdvisoryID string }

// Rating is the severity a finding carries and where it comes from
// (severity_source: kind:source/advisory_id, with @ecosystem for a
// distribution's rating of one release; "" when nothing rates it).
type Rating struct{ Severity, Source string }

// Ratings are the resolved ratings of some records: per record, the
// distribution's own rating per release (vuln_release_ratings) and the
// rating of its vulnerability (vuln_ratings).
type Ratings struct {
	vuln    map[RecordKey]Rating
	release map[RecordKey]map[string]Rating
}

// Of is the rating of a finding of record k on ecosystem eco (a host's OS
// release such as Debian:12, or a language ecosystem): the release's own
// rating when one exists, else the vulnerability's. It is the rule of
// kpi_exposures_live (0020_release_ratings.sql), so stdin matching,
// explain and the fleet's exports agree. ok is false for a record the
// resolution did not cover.
func (r *Ratings) Of(k RecordKey, eco string) (Rating, bool) {
	if rr, ok := r.release[k][eco]; ok {
		return rr, true
	}
	v, ok := r.vuln[k]
	return v, ok
}

// sqlRatings reads vuln_ratings and vuln_release_ratings of the records
// whose keys fill %[1]s: one row per record and release it has a rating
// for (an empty ecosystem when none).
const sqlRatings = `SELECT v.source, v.advisory_id, v.severity, v.severity_source, rr.ecosystem, rr.severity, rr.severity_source
FROM (SELECT source, advisory_id, severity, severity_source FROM vuln_ratings WHERE (source, advisory_id) IN (%[1]s)) AS v
LEFT JOIN (
    SELECT source, advisory_id, ecosystem, severity, severity_source FROM vuln_release_ratings WHERE (source, advisory_id) IN (%[1]s)
) AS rr ON rr.source = v.source AND rr.advisory_id = v.advisory_id
SETTINGS join_use_nulls = 0`

// ResolveRatings resolves the ratings of records. ok is false, with no
// error, on a store too old for the analytics migrations: there findings
// keep each record's own severity (advisories.severity).
func ResolveRatings(ctx context.Context, s store.Store, keys []RecordKey) (r *Ratings, ok bool, err error) {
	skipped, err := schemas.Skipped(ctx, s)
	if err != nil {
		return nil, false, fmt.Errorf("resolving severities: reading applied migrations: %w", err)
	}
	if len(skipped) > 0 {
		return nil, false, nil
	}
	r = &Ratings{vuln: map[RecordKey]Rating{}, release: map[RecordKey]map[string]Rating{}}
	if len(keys) == 0 {
		return r, true, nil
	}
	var in strings.Builder
	args := make([]any, 0, 4*len(keys))
	for i, k := range keys {
		if i > 0 {
			in.WriteString(", ")
		}
		in.WriteString("(?, ?)")
		args = append(args, k.Source, k.AdvisoryID)
	}
	args = append(args, args...) // the list appears twice
	rows, err := s.Query(ctx, fmt.Sprintf(sqlRatings, in.String()), args...)
	if err != nil {
		return nil, false, fmt.Errorf("resolving severities of %d records: %w", len(keys), err)
	}
	defer rows.Close()
	for rows.Next() {
		var k RecordKey
		var v, rr Rating
		var eco string
		if err := rows.Scan(&k.Source, &k.AdvisoryID, &v.Severity, &v.Source, &eco, &rr.Severity, &rr.Source); err != nil {
			return nil, false, fmt.Errorf("resolving severities: %w", err)
		}
		r.vuln[k] = v
		if eco != "" {
			if r.release[k] == nil {
				r.release[k] = map[string]Rating{}
			}
			r.release[k][eco] = rr
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("resolving severities: %w", err)
	}
	return r, true, nil
}
