// Package sqlaccess runs compliance officers' SQL: read-only, bounded in
// rows, time and memory, on either store, and the same way whether the
// query runs in `patchgrid sql` itself or in the `patchgrid serve` process
// that holds the embedded store (Handler, Remote).
//
// Read-only is enforced twice. The statement must be a single SELECT, WITH,
// SHOW, DESCRIBE, EXISTS or EXPLAIN; and it runs with the engine's
// readonly=1, which refuses writes, DDL, SET and table functions (file(),
// url(), ...). A SELECT is wrapped as a subquery, so the limits are the
// outer query's settings. Queries that name SETTINGS themselves are
// refused: a subquery's own SETTINGS clause can lift readonly in the
// embedded engine (checked with chDB 26.7: `SELECT * FROM (SELECT * FROM
// file(...) SETTINGS readonly=0) SETTINGS readonly=1` reads the file).
package sqlaccess

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Options bound one query. Zero values are the defaults.
type Options struct {
	// MaxRows is the most rows returned; a longer result is cut there and
	// marked truncated. Default 10,000; at most 1,000,000.
	MaxRows int
	// Timeout is the engine's max_execution_time. Default 60s.
	Timeout time.Duration
	// MaxMemory is the engine's max_memory_usage for the query, in bytes.
	// Default 1 GiB.
	MaxMemory int64
}

// Limits of Options.
const (
	DefaultMaxRows   = 10_000
	MaxMaxRows       = 1_000_000
	DefaultTimeout   = 60 * time.Second
	DefaultMaxMemory = 1 << 30
)

func (o Options) withDefaults() Options {
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.MaxRows > MaxMaxRows {
		o.MaxRows = MaxMaxRows
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	return o
}

// ErrRefused marks a statement that is not a single read-only query; a
// retry cannot help.
var ErrRefused = errors.New("refused")

// Statement is a query that passed Check.
type Statement struct {
	text string
	kind string // SELECT, WITH, SHOW, DESCRIBE, DESC, EXISTS, EXPLAIN
}

var settingsRE = regexp.MustCompile(`(?i)\bsettings\b`)

// Check accepts one read-only statement. It is deliberately stricter than
// the engine: it looks at the raw text, strings included, so that no
// quoting trick can hide a second statement or a SETTINGS clause.
func Check(query string) (Statement, error) {
	q := strings.TrimSpace(query)
	q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
	if q == "" {
		return Statement{}, fmt.Errorf("%w: empty query", ErrRefused)
	}
	if strings.Contains(q, ";") {
		return Statement{}, fmt.Errorf("%w: one statement at a time (the query contains ';')", ErrRefused)
	}
	if settingsRE.MatchString(q) {
		return Statement{}, fmt.Errorf("%w: SETTINGS are set by patchgrid (read-only, row, time and memory limits); remove them from the query", ErrRefused)
	}
	kind := store.LeadingKeyword(q)
	switch kind {
	case "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN":
	default:
		if kind == "" {
			kind = "(none)"
		}
		return Statement{}, fmt.Errorf("%w: only SELECT, WITH, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed, not %s", ErrRefused, kind)
	}
	return Statement{text: q, kind: kind}, nil
}

// SQL is the statement as sent to the engine, with the limits as settings.
// A SELECT becomes a subquery whose outer query carries the LIMIT and the
// settings; other kinds get the settings appended.
func (s Statement) SQL(opt Options) string {
	opt = opt.withDefaults()
	settings := fmt.Sprintf("SETTINGS readonly = 1, max_execution_time = %d, max_memory_usage = %d",
		int64(opt.Timeout.Round(time.Second)/time.Second), opt.MaxMemory)
	switch s.kind {
	case "SELECT", "WITH":
		// The newline keeps a trailing -- comment from swallowing the ')'.
		return fmt.Sprintf("SELECT * FROM (\n%s\n) LIMIT %d %s", s.text, opt.MaxRows+1, settings)
	}
	return s.text + "\n" + settings
}

// Result is a query's columns and rows. Values are the store's Go values
// (string, integers, floats, bool, time.Time, slices).
type Result struct {
	Columns   []store.Column
	Rows      [][]any
	Truncated bool // more rows than MaxRows existed; Rows holds MaxRows
	Elapsed   time.Duration
}

// Run checks query and runs it read-only under opt on st.
func Run(ctx context.Context, st store.Store, query string, opt Options) (*Result, error) {
	stmt, err := Check(query)
	if err != nil {
		return nil, err
	}
	return stmt.Run(ctx, st, opt)
}

// Run runs a checked statement read-only under opt on st.
func (s Statement) Run(ctx context.Context, st store.Store, opt Options) (*Result, error) {
	opt = opt.withDefaults()
	// The client-side deadline backs the engine's max_execution_time up
	// for time spent outside execution (a slow client, a stalled server).
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout+5*time.Second)
	defer cancel()
	start := time.Now()
	rows, err := st.Query(ctx, s.SQL(opt))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	res := &Result{Columns: rows.Columns()}
	for rows.Next() {
		if len(res.Rows) == opt.MaxRows {
			res.Truncated = true
			break
		}
		row := make([]any, len(res.Columns))
		ptrs := make([]any, len(row))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}
