package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Open connects to the backend cfg selects. For "chdb" it loads libchdb.so;
// nothing else needs the library, so a server-only deployment runs without
// it.
func Open(ctx context.Context, cfg Config) (Store, error) {
	cfg = cfg.withDefaults()
	if err := validIdent(cfg.Database); err != nil {
		return nil, err
	}
	switch cfg.Backend {
	case "chdb":
		return openCHDB(ctx, cfg)
	case "clickhouse":
		return openServer(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown store backend %q (want chdb or clickhouse)", cfg.Backend)
}

func (c Config) withDefaults() Config {
	if c.Backend == "" {
		c.Backend = "chdb"
	}
	if c.Database == "" {
		c.Database = "patchgrid"
	}
	if c.User == "" {
		c.User = "default"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.CHDBLib == "" {
		c.CHDBLib = DefaultCHDBLib(os.Getenv)
	}
	return c
}

// DefaultCHDBLib is where patchgrid's scripts install libchdb.so:
// $PATCHGRID_CACHE/chdb/lib/libchdb.so, or the npm package's layout
// $PATCHGRID_CACHE/chdb/package/libchdb.so when only that exists
// ($PATCHGRID_CACHE defaults to ~/.cache/patchgrid).
func DefaultCHDBLib(getenv func(string) string) string {
	cache := getenv("PATCHGRID_CACHE")
	if cache == "" {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		cache = filepath.Join(home, ".cache", "patchgrid")
	}
	lib := filepath.Join(cache, "chdb", "lib", "libchdb.so")
	if _, err := os.Stat(lib); err != nil {
		if alt := filepath.Join(cache, "chdb", "package", "libchdb.so"); fileExists(alt) {
			return alt
		}
	}
	return lib
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validIdent keeps database names to plain identifiers: they are spliced
// into CREATE DATABASE and USE.
func validIdent(name string) error {
	if !identRE.MatchString(name) {
		return fmt.Errorf("invalid database name %q: use letters, digits and '_'", name)
	}
	return nil
}

// ParseVersion parses a ClickHouse version string such as "18.16.1" or
// "26.7.2.1".
func ParseVersion(s string) (Version, error) {
	v := Version{Text: strings.TrimSpace(s)}
	parts := strings.Split(v.Text, ".")
	if len(parts) < 2 {
		return v, fmt.Errorf("unrecognized ClickHouse version %q", s)
	}
	nums := []*int{&v.Major, &v.Minor, &v.Patch}
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return v, fmt.Errorf("unrecognized ClickHouse version %q", s)
		}
		*nums[i] = n
	}
	return v, nil
}

// Error is a failed statement: which backend, which statement (shortened),
// and what went wrong.
type Error struct {
	Backend   string
	Statement string
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %v (statement: %s)", e.Backend, e.Err, e.Statement)
}

func (e *Error) Unwrap() error { return e.Err }

const maxStatementInError = 200

func stmtErr(backend, stmt string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	return &Error{Backend: backend, Statement: shorten(stmt), Err: err}
}

func shorten(stmt string) string {
	stmt = strings.Join(strings.Fields(stmt), " ")
	if len(stmt) <= maxStatementInError {
		return stmt
	}
	cut := maxStatementInError
	for cut > 0 && cut < len(stmt) && stmt[cut]&0xC0 == 0x80 {
		cut-- // do not split a UTF-8 sequence
	}
	return stmt[:cut] + "…"
}

// insertStatement builds the INSERT with its explicit column list.
func insertStatement(table string, columns []string) (string, error) {
	if len(columns) == 0 {
		return "", errors.New("insert: no columns")
	}
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	for i, c := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c)
	}
	b.WriteByte(')')
	return b.String(), nil
}

// typeCache remembers each table's column types from DESCRIBE TABLE, so an
// Insert does not pay a round trip (and a query plan, on the server) before
// every batch. A store invalidates it on every Exec, which is how schema
// changes (migrations, DROP, ALTER) go through a Store, and drops a table's
// entry when an Insert into it fails, in case another process changed it.
// The zero value is ready; it is safe for concurrent use.
type typeCache struct {
	mu     sync.Mutex
	tables map[string]map[string]colType // table as given → column → type
}

// colType is one described column: its parsed type, or why it has none (a
// type this package cannot encode fails only the inserts that write it).
type colType struct {
	t   *chType
	err error
}

// types returns the types of columns in table, in the order given.
func (tc *typeCache) types(ctx context.Context, s Store, table string, columns []string) ([]*chType, error) {
	tc.mu.Lock()
	byName, ok := tc.tables[table]
	tc.mu.Unlock()
	if !ok {
		var err error
		if byName, err = describe(ctx, s, table); err != nil {
			return nil, err
		}
		tc.mu.Lock()
		if tc.tables == nil {
			tc.tables = map[string]map[string]colType{}
		}
		tc.tables[table] = byName
		tc.mu.Unlock()
	}
	types := make([]*chType, len(columns))
	for i, c := range columns {
		ct, ok := byName[strings.Trim(c, "`")]
		if !ok {
			tc.forget(table) // perhaps added since it was described
			return nil, fmt.Errorf("table %s has no column %s: %w", table, c, ErrUnknownColumn)
		}
		if ct.err != nil {
			return nil, fmt.Errorf("column %s: %w", c, ct.err)
		}
		types[i] = ct.t
	}
	return types, nil
}

// forget drops one table's entry.
func (tc *typeCache) forget(table string) {
	tc.mu.Lock()
	delete(tc.tables, table)
	tc.mu.Unlock()
}

// reset drops every entry.
func (tc *typeCache) reset() {
	tc.mu.Lock()
	clear(tc.tables)
	tc.mu.Unlock()
}

// describe returns the parsed type of every column of table.
func describe(ctx context.Context, s Store, table string) (map[string]colType, error) {
	rows, err := s.Query(ctx, "DESCRIBE TABLE "+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byName := map[string]colType{}
	for rows.Next() {
		vals := make([]any, len(rows.Columns()))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		name, _ := vals[0].(string)
		typ, _ := vals[1].(string)
		t, err := parseType(typ)
		byName[name] = colType{t: t, err: err}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return byName, nil
}

// ErrUnknownColumn is wrapped by an Insert that names a column the table
// does not have (a migration dropped or renamed it): no row of that insert
// can succeed, whatever its values.
var ErrUnknownColumn = errors.New("unknown column")

// RowError is an Insert's row that the table's column types reject before
// anything is sent: a value the column cannot hold (out of range, not an
// enum value, too long, wrong Go type). Only that row is at fault; callers
// may drop it and insert the others.
type RowError struct {
	Row    int    // index into the rows given to Insert
	Column string // empty when the row has the wrong number of values
	Err    error
}

func (e *RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("row %d: %v", e.Row, e.Err)
	}
	return fmt.Sprintf("row %d column %s: %v", e.Row, e.Column, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// normalizeRow converts row to the canonical types of the columns into dst,
// leaving the caller's row untouched.
func normalizeRow(dst []any, types []*chType, columns []string, row []any, rowIdx int) error {
	if len(row) != len(types) {
		return &RowError{Row: rowIdx, Err: fmt.Errorf("%d values for %d columns", len(row), len(types))}
	}
	for j, t := range types {
		v, err := normalize(t, row[j])
		if err != nil {
			return &RowError{Row: rowIdx, Column: columns[j], Err: err}
		}
		dst[j] = v
	}
	return nil
}
