// Package store is patchgrid's one way to talk to ClickHouse. Two backends
// implement it: a ClickHouse server over the native protocol
// (clickhouse-go/v2) and the embedded engine chDB (libchdb.so, loaded at run
// time). Every statement patchgrid runs lives in schemas/ or analytics/ and
// goes through this interface, so both backends run the same SQL.
package store

import (
	"context"
	"crypto/tls"
	"time"
)

// Store runs SQL against one ClickHouse.
type Store interface {
	// Exec runs a statement that returns no rows. args bind to '?'
	// placeholders client-side (see Bind).
	Exec(ctx context.Context, query string, args ...any) error
	// Query runs a statement that returns rows. The caller must Close them.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// Insert writes rows into table in one batch. columns name every column
	// written: the 2018 server only accepts INSERTs with a column list.
	// Each row holds one value per column, of a Go type matching the column
	// (string, uint8..uint64, int8..int64, float32/64, bool, time.Time,
	// []string).
	Insert(ctx context.Context, table string, columns []string, rows [][]any) error
	// ServerVersion reports the ClickHouse version behind the store.
	ServerVersion(ctx context.Context) (Version, error)
	// Backend names the implementation: "clickhouse" or "chdb".
	Backend() string
	Close() error
}

// Rows is a cursor over a result. Scan accepts pointers to string, bool,
// uint8..uint64, int8..int64, float32/64, time.Time and []string.
type Rows interface {
	Columns() []Column
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Column describes one result column.
type Column struct {
	Name string
	Type string // ClickHouse type name, e.g. "String", "UInt64", "Array(String)"
}

// Version is a ClickHouse server version.
type Version struct {
	Major, Minor, Patch int
	Text                string
}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// Config selects and configures a backend. Zero values are defaults.
type Config struct {
	// Backend is "chdb" (embedded, the default) or "clickhouse".
	Backend string
	// DataDir holds the embedded store (chdb). One process at a time.
	DataDir string
	// CHDBLib is the path of libchdb.so. Default: $PATCHGRID_CACHE/chdb/lib/libchdb.so
	// ($PATCHGRID_CACHE defaults to ~/.cache/patchgrid).
	CHDBLib string
	// Addr is host:port of a ClickHouse server's native protocol.
	Addr     string
	Database string // default "patchgrid"
	User     string // default "default"
	Password string
	// DialTimeout bounds connecting to a server. Default 10s.
	DialTimeout time.Duration
	// TLS, when set, encrypts and authenticates the connection to the
	// server (backend clickhouse); build it with schemas/tlsconf.
	TLS *tls.Config

	// MaxConns bounds the embedded engine's connections (chdb): each runs
	// one statement, so it is also the most statements running at once.
	// A statement waits up to AcquireTimeout (or its context) for a free
	// one. Default DefaultCHDBMaxConns.
	MaxConns int
	// AcquireTimeout bounds the wait for a free connection (chdb), so
	// that a caller without a deadline fails with a retryable error
	// instead of hanging. Default 60s.
	AcquireTimeout time.Duration
	// MemoryBudget is the most memory the embedded engine's statements
	// may use together, in bytes (chdb: the setting
	// max_memory_usage_for_user, every statement runs as one user); one
	// statement may use at most half of it (max_memory_usage), and sorts
	// and aggregations spill to disk past a quarter of it. 0: no limit
	// beyond the engine's own. SECURITY.md explains how to size it.
	MemoryBudget int64
}

// DefaultCHDBMaxConns is the default bound of the embedded engine's
// connection pool.
const DefaultCHDBMaxConns = 16
