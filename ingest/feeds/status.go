package feeds

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// SourceStatus is one line of `feeds status`.
type SourceStatus struct {
	Source         string
	Records        uint64
	Withdrawn      uint64
	NewestModified time.Time
	LastLoad       time.Time // zero when never loaded
	LastLocation   string
	LastWritten    uint64 // records loaded or updated by the last load
	LastSkipped    uint64
	LastError      string
}

// Status reports every source the store holds: its current records, the
// newest modified date and its last load.
func Status(ctx context.Context, st store.Store) ([]SourceStatus, error) {
	byName := map[string]*SourceStatus{}
	var order []string
	get := func(name string) *SourceStatus {
		s := byName[name]
		if s == nil {
			s = &SourceStatus{Source: name}
			byName[name] = s
			order = append(order, name)
		}
		return s
	}
	if err := eachRow(ctx, st, queryStatusAdvisories, func(r store.Rows) error {
		var name string
		var n, w uint64
		var mod time.Time
		if err := r.Scan(&name, &n, &w, &mod); err != nil {
			return err
		}
		s := get(name)
		s.Records, s.Withdrawn, s.NewestModified = n, w, mod
		return nil
	}); err != nil {
		return nil, err
	}
	for _, q := range []struct{ name, query string }{{SourceKEV, queryStatusKEV}, {SourceEPSS, queryStatusEPSS}} {
		if err := eachRow(ctx, st, q.query, func(r store.Rows) error {
			var n uint64
			var newest time.Time
			var version string
			if err := r.Scan(&n, &newest, &version); err != nil {
				return err
			}
			if n > 0 {
				s := get(q.name)
				s.Records, s.NewestModified = n, newest
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if err := eachRow(ctx, st, queryStatusLoads, func(r store.Rows) error {
		var name, loc, errText string
		var fin time.Time
		var written, skipped uint64
		if err := r.Scan(&name, &fin, &loc, &errText, &written, &skipped); err != nil {
			return err
		}
		s := get(name)
		s.LastLoad, s.LastLocation, s.LastError, s.LastWritten, s.LastSkipped = fin, loc, errText, written, skipped
		return nil
	}); err != nil {
		return nil, err
	}
	slices.Sort(order)
	out := make([]SourceStatus, 0, len(order))
	for _, n := range order {
		out = append(out, *byName[n])
	}
	return out, nil
}

func eachRow(ctx context.Context, st store.Store, query string, fn func(store.Rows) error) error {
	rows, err := st.Query(ctx, query)
	if err != nil {
		return fmt.Errorf("feeds status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("feeds status: %s: %w", query, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("feeds status: %w", err)
	}
	return nil
}
