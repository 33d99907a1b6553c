package store

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// serverStore talks to a ClickHouse server over the native protocol. The
// 2018 server (18.16.1, protocol revision 54412) is supported: statements
// are bound client-side and INSERTs always name their columns.
type serverStore struct {
	conn driver.Conn
	addr string

	verOnce sync.Once
	ver     Version
	verErr  error

	types typeCache
}

func serverOptions(cfg Config, database string) *clickhouse.Options {
	return &clickhouse.Options{
		Addr:        []string{cfg.Addr},
		Auth:        clickhouse.Auth{Database: database, Username: cfg.User, Password: cfg.Password},
		DialTimeout: cfg.DialTimeout,
		// nil: plaintext. With TLS, Addr is the server's secure native
		// port (tcp_port_secure, 9440 by default).
		TLS: cfg.TLS,
		// Compression would be nice for exports, but LZ4 negotiation with
		// the 2018 server is one more thing to break; loopback needs none.
	}
}

func openServer(ctx context.Context, cfg Config) (Store, error) {
	if cfg.Addr == "" {
		return nil, fmt.Errorf("clickhouse store: no server address (set --clickhouse-addr)")
	}
	// Connect without a database first: the handshake fails if the
	// configured one does not exist yet.
	boot, err := clickhouse.Open(serverOptions(cfg, ""))
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	stmt := "CREATE DATABASE IF NOT EXISTS " + cfg.Database
	err = boot.Exec(ctx, stmt)
	boot.Close()
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, stmtErr("clickhouse", stmt, err))
	}
	conn, err := clickhouse.Open(serverOptions(cfg, cfg.Database))
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s database %s: %w", cfg.Addr, cfg.Database, err)
	}
	return &serverStore{conn: conn, addr: cfg.Addr}, nil
}

func (s *serverStore) Backend() string { return "clickhouse" }

// Addr is the server's host:port, for messages.
func (s *serverStore) Addr() string { return s.addr }

func (s *serverStore) Close() error { return s.conn.Close() }

func (s *serverStore) Exec(ctx context.Context, query string, args ...any) error {
	q, err := Bind(query, args...)
	if err != nil {
		return stmtErr(s.Backend(), query, err)
	}
	// Any statement may change a table's columns: the next Insert
	// describes again (reset after the statement, so that a concurrent
	// Insert cannot cache what it replaced).
	defer s.types.reset()
	return stmtErr(s.Backend(), q, s.conn.Exec(ctx, q))
}

func (s *serverStore) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	q, err := Bind(query, args...)
	if err != nil {
		return nil, stmtErr(s.Backend(), query, err)
	}
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, stmtErr(s.Backend(), q, err)
	}
	cts := rows.ColumnTypes()
	r := &serverRows{rows: rows, stmt: q, cols: make([]Column, len(cts)), holders: make([]any, len(cts))}
	for i, ct := range cts {
		r.cols[i] = Column{Name: ct.Name(), Type: ct.DatabaseTypeName()}
		r.holders[i] = reflect.New(ct.ScanType()).Interface()
	}
	return r, nil
}

func (s *serverStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	stmt, err := insertStatement(table, columns)
	if err != nil {
		return stmtErr(s.Backend(), table, err)
	}
	if len(rows) == 0 {
		return nil
	}
	types, err := s.types.types(ctx, s, table, columns)
	if err != nil {
		return stmtErr(s.Backend(), stmt, err)
	}
	if err := s.insert(ctx, stmt, types, columns, rows); err != nil {
		// The table may have changed under us (another process's
		// migration): describe it again on the next attempt.
		s.types.forget(table)
		return stmtErr(s.Backend(), stmt, err)
	}
	return nil
}

func (s *serverStore) insert(ctx context.Context, stmt string, types []*chType, columns []string, rows [][]any) error {
	batch, err := s.conn.PrepareBatch(ctx, stmt)
	if err != nil {
		return err
	}
	defer batch.Abort()
	vals := make([]any, len(columns))
	for i, row := range rows {
		if err := normalizeRow(vals, types, columns, row, i); err != nil {
			return err
		}
		if err := batch.Append(vals...); err != nil {
			return &RowError{Row: i, Err: err}
		}
	}
	return batch.Send()
}

func (s *serverStore) ServerVersion(ctx context.Context) (Version, error) {
	s.verOnce.Do(func() {
		var text string
		rows, err := s.Query(ctx, "SELECT version()")
		if err == nil {
			defer rows.Close()
			if rows.Next() {
				err = rows.Scan(&text)
			} else if err = rows.Err(); err == nil {
				err = fmt.Errorf("SELECT version() returned no row")
			}
		}
		if err != nil {
			s.verErr = err
			return
		}
		s.ver, s.verErr = ParseVersion(text)
	})
	return s.ver, s.verErr
}

type serverRows struct {
	rows    driver.Rows
	stmt    string
	cols    []Column
	holders []any
	args    []any
	err     error
}

func (r *serverRows) Columns() []Column { return r.cols }

func (r *serverRows) Next() bool {
	if r.err != nil {
		return false
	}
	return r.rows.Next()
}

func (r *serverRows) Scan(dest ...any) error {
	if len(dest) != len(r.cols) {
		return stmtErr("clickhouse", r.stmt, fmt.Errorf("scan: %d destinations for %d columns", len(dest), len(r.cols)))
	}
	// A destination of exactly the driver's type takes the value directly;
	// the others go through a holder and the shared conversions.
	if r.args == nil {
		r.args = make([]any, len(dest))
	}
	for i, d := range dest {
		if reflect.TypeOf(d) == reflect.TypeOf(r.holders[i]) {
			r.args[i] = d
		} else {
			r.args[i] = r.holders[i]
		}
	}
	if err := r.rows.Scan(r.args...); err != nil {
		return stmtErr("clickhouse", r.stmt, err)
	}
	for i, h := range r.holders {
		if r.args[i] != h {
			if tm, ok := dest[i].(*time.Time); ok {
				*tm = tm.UTC() // the driver gives the server's zone
			}
			continue
		}
		if err := assign(dest[i], serverValue(reflect.ValueOf(h).Elem())); err != nil {
			return stmtErr("clickhouse", r.stmt, fmt.Errorf("column %s: %w", r.cols[i].Name, err))
		}
	}
	return nil
}

// serverValue turns what clickhouse-go scanned into the canonical value:
// Nullable columns arrive as pointers, UUIDs as a Stringer.
func serverValue(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	x := v.Interface()
	switch x.(type) {
	case string, []string:
		return x
	}
	if st, ok := x.(fmt.Stringer); ok && v.Kind() == reflect.Array {
		return st.String() // uuid.UUID
	}
	return x
}

func (r *serverRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return stmtErr("clickhouse", r.stmt, r.rows.Err())
}

func (r *serverRows) Close() error {
	return stmtErr("clickhouse", r.stmt, r.rows.Close())
}
