package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store/internal/libchdb"
)

// The chDB engine is a process-wide singleton: one data directory per
// process, shut down when its last connection closes. engines tracks it so
// that two Stores on the same directory share it and a Store on a second
// directory fails clearly instead of rebooting the engine under the first.
var engines struct {
	sync.Mutex
	cur *engine
}

type engine struct {
	lib  *libchdb.Lib
	path string
	lock *os.File
	refs int
}

func acquireEngine(cfg Config) (*engine, error) {
	engines.Lock()
	defer engines.Unlock()
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("chdb data dir %q: %w", cfg.DataDir, err)
	}
	if e := engines.cur; e != nil {
		if e.path != dir {
			return nil, fmt.Errorf("chdb: this process already has the embedded store open at %s; one process holds one data dir (asked for %s)", e.path, dir)
		}
		e.refs++
		return e, nil
	}
	if !fileExists(cfg.CHDBLib) {
		return nil, fmt.Errorf("chdb: library %s not found (set --chdb-lib or PATCHGRID_CHDB_LIB, run the setup script, or use --store clickhouse)", cfg.CHDBLib)
	}
	lib, err := libchdb.Load(cfg.CHDBLib)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chdb data dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	e := &engine{lib: lib, path: dir, lock: lock, refs: 1}
	engines.cur = e
	return e, nil
}

// lockDir takes an exclusive lock on dir, so a second process gets a clear
// error instead of whatever the engine does with a shared directory.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, "patchgrid.lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chdb data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(name)
		f.Close()
		who := "another process"
		if pid := strings.TrimSpace(string(holder)); pid != "" {
			who = "process " + pid
		}
		return nil, fmt.Errorf("chdb data dir %s is in use by %s; one process at a time can open it (stop it, or use another --data-dir)", dir, who)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func releaseEngine(e *engine) {
	engines.Lock()
	defer engines.Unlock()
	e.refs--
	if e.refs == 0 {
		_ = e.lock.Truncate(0)
		e.lock.Close() // releases the flock
		engines.cur = nil
	}
}

// chdbStore runs statements in the embedded engine. A chDB connection runs
// one statement at a time, so each statement (and each open Rows) holds a
// connection of its own from a pool. The pool is bounded (Config.MaxConns):
// an unbounded one let 40 concurrent API requests open 40 connections, each
// running a statement with its own memory (issue 15: 3.5 GB RSS). A
// statement waits for a free connection up to its context's deadline or
// Config.AcquireTimeout, whichever comes first, so nested queries beyond
// the bound fail with a retryable error rather than deadlock.
type chdbStore struct {
	eng *engine
	db  string
	// settings run on every new connection: the memory budget.
	settings string
	// slots holds one token per connection in use; its capacity is the
	// pool's bound.
	slots          chan struct{}
	acquireTimeout time.Duration

	mu     sync.Mutex
	idle   []*libchdb.Conn
	open   int
	closed bool

	verOnce sync.Once
	ver     Version
	verErr  error

	types typeCache
}

func openCHDB(ctx context.Context, cfg Config) (Store, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("chdb store: no data dir (set --data-dir)")
	}
	eng, err := acquireEngine(cfg)
	if err != nil {
		return nil, err
	}
	maxConns, wait := cfg.MaxConns, cfg.AcquireTimeout
	if maxConns <= 0 {
		maxConns = DefaultCHDBMaxConns
	}
	if wait <= 0 {
		wait = 60 * time.Second
	}
	s := &chdbStore{eng: eng, db: cfg.Database, settings: memorySettings(cfg.MemoryBudget),
		slots: make(chan struct{}, maxConns), acquireTimeout: wait}
	// The first connection boots the engine; create the database before any
	// connection tries to USE it.
	c, err := s.connect("")
	if err != nil {
		releaseEngine(eng)
		return nil, err
	}
	stmt := "CREATE DATABASE IF NOT EXISTS " + cfg.Database
	if err := chdbExec(c, stmt); err != nil {
		c.Close()
		releaseEngine(eng)
		return nil, stmtErr("chdb", stmt, err)
	}
	if err := chdbExec(c, "USE "+cfg.Database); err != nil {
		c.Close()
		releaseEngine(eng)
		return nil, stmtErr("chdb", "USE "+cfg.Database, err)
	}
	s.idle = append(s.idle, c)
	s.open = 1
	return s, ctx.Err()
}

// memorySettings is the SET statement that enforces a memory budget on a
// connection ("" without one). The engine counts every statement against
// max_memory_usage_for_user (all run as the same user), so the budget holds
// however many connections are busy; one statement gets half of it, and
// sorts and GROUP BYs spill to disk past a quarter instead of failing.
func memorySettings(budget int64) string {
	if budget <= 0 {
		return ""
	}
	return fmt.Sprintf("SET max_memory_usage_for_user = %d, max_memory_usage = %d, "+
		"max_bytes_before_external_sort = %d, max_bytes_before_external_group_by = %d",
		budget, budget/2, budget/4, budget/4)
}

func (s *chdbStore) connect(db string) (*libchdb.Conn, error) {
	c, err := s.eng.lib.Connect("--path=" + s.eng.path)
	if err != nil {
		return nil, fmt.Errorf("chdb at %s: %w", s.eng.path, err)
	}
	if s.settings != "" {
		if err := chdbExec(c, s.settings); err != nil {
			c.Close()
			return nil, stmtErr("chdb", s.settings, err)
		}
	}
	if db != "" {
		if err := chdbExec(c, "USE "+db); err != nil {
			c.Close()
			return nil, stmtErr("chdb", "USE "+db, err)
		}
	}
	return c, nil
}

func chdbExec(c *libchdb.Conn, stmt string) error {
	r, err := c.Query([]byte(stmt), "TabSeparated")
	if err != nil {
		return err
	}
	r.Free()
	return nil
}

var errClosed = errors.New("store is closed")

// PoolExhaustedError is returned when no connection of a bounded pool
// became free in time. Retrying later can help.
type PoolExhaustedError struct {
	Conns  int
	Waited time.Duration
}

func (e *PoolExhaustedError) Error() string {
	return fmt.Sprintf("all %d connections of the embedded store stayed busy for %v (retry later, or raise the pool bound)", e.Conns, e.Waited.Round(time.Millisecond))
}

// Temporary reports that a retry can succeed.
func (e *PoolExhaustedError) Temporary() bool { return true }

// acquire takes a connection, waiting for a free slot of the pool up to
// ctx's end or s.acquireTimeout.
func (s *chdbStore) acquire(ctx context.Context) (*libchdb.Conn, error) {
	select {
	case s.slots <- struct{}{}:
	default:
		t0 := time.Now()
		timer := time.NewTimer(s.acquireTimeout)
		select {
		case s.slots <- struct{}{}:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
			return nil, &PoolExhaustedError{Conns: cap(s.slots), Waited: time.Since(t0)}
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.slots
		return nil, errClosed
	}
	if n := len(s.idle); n > 0 {
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return c, nil
	}
	s.open++
	s.mu.Unlock()
	c, err := s.connect(s.db)
	if err != nil {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
		<-s.slots
	}
	return c, err
}

func (s *chdbStore) release(c *libchdb.Conn) {
	defer func() { <-s.slots }()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		s.open--
		s.finishClose()
		return
	}
	s.idle = append(s.idle, c)
}

// PoolStats reports the embedded store's connections: open (idle or busy)
// and busy. Tests and /metrics use it to show the pool's bound holds.
func (s *chdbStore) PoolStats() (open, busy, max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open, len(s.slots), cap(s.slots)
}

// discard closes a connection instead of pooling it. A statement that failed
// while streaming leaves the rest of its result queued on the connection
// (chDB 26.7: the next query on it read the failed query's leftover chunk
// as its own header), so such a connection is never reused.
func (s *chdbStore) discard(c *libchdb.Conn) {
	defer func() { <-s.slots }()
	c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if s.closed {
		s.finishClose()
	}
}

func (s *chdbStore) Backend() string { return "chdb" }

// DataDir is the engine's data directory, for messages.
func (s *chdbStore) DataDir() string { return s.eng.path }

// Close closes idle connections now and busy ones when their Rows close;
// the engine shuts down with the last one.
func (s *chdbStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, c := range s.idle {
		c.Close()
		s.open--
	}
	s.idle = nil
	s.finishClose()
	return nil
}

// finishClose releases the engine once the store's last connection closed.
// s.mu is held.
func (s *chdbStore) finishClose() {
	if s.closed && s.open == 0 && s.eng != nil {
		releaseEngine(s.eng)
		s.eng = nil
	}
}

func (s *chdbStore) Exec(ctx context.Context, query string, args ...any) error {
	q, err := Bind(query, args...)
	if err != nil {
		return stmtErr("chdb", query, err)
	}
	if err := ctx.Err(); err != nil {
		return stmtErr("chdb", q, err)
	}
	c, err := s.acquire(ctx)
	if err != nil {
		return stmtErr("chdb", q, err)
	}
	defer s.release(c)
	// Any statement may change a table's columns: the next Insert
	// describes again (see serverStore.Exec).
	defer s.types.reset()
	return stmtErr("chdb", q, chdbExec(c, q))
}

const chdbFormat = "RowBinaryWithNamesAndTypes"

func (s *chdbStore) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	q, err := Bind(query, args...)
	if err != nil {
		return nil, stmtErr("chdb", query, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, stmtErr("chdb", q, err)
	}
	c, err := s.acquire(ctx)
	if err != nil {
		return nil, stmtErr("chdb", q, err)
	}
	r := &chdbRows{ctx: ctx, s: s, conn: c, stmt: q}
	// chDB streams only SELECTs; DESCRIBE, SHOW, EXISTS and the like come
	// back whole, as one chunk.
	if streamable(q) {
		r.stream, err = c.StreamQuery([]byte(q), chdbFormat)
	} else {
		r.whole, err = c.Query([]byte(q), chdbFormat)
	}
	if err != nil {
		s.release(c)
		return nil, stmtErr("chdb", q, err)
	}
	// Fetch the first chunk now: errors and the column list belong to Query.
	if err := r.fetch(); err != nil {
		r.err = err
		r.Close()
		return nil, err
	}
	return r, nil
}

// streamable reports whether q is a SELECT, which chDB can stream.
func streamable(q string) bool {
	kw := LeadingKeyword(q)
	return kw == "SELECT" || kw == "WITH"
}

// LeadingKeyword is the first word of statement q in upper case, after
// white space, comments and opening parentheses ("" when there is none):
// what kind of statement q is.
func LeadingKeyword(q string) string {
	for {
		q = strings.TrimLeft(q, " \t\r\n(")
		switch {
		case strings.HasPrefix(q, "--"):
			_, q, _ = strings.Cut(q, "\n")
		case strings.HasPrefix(q, "/*"):
			_, q, _ = strings.Cut(q, "*/")
		default:
			n := 0
			for n < len(q) && isIdentByte(q[n]) {
				n++
			}
			return strings.ToUpper(q[:n])
		}
	}
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

type chdbRows struct {
	ctx    context.Context
	s      *chdbStore
	conn   *libchdb.Conn
	stream *libchdb.Stream // a streamed SELECT, or
	whole  *libchdb.Result // a result that came back in one piece
	stmt   string

	chunk  *libchdb.Result
	rd     rbReader
	header []byte
	cols   []Column
	types  []*chType
	// The current row is rd.b[rowStart:rowEnd]; rowEnd 0 means none.
	rowStart, rowEnd int
	done             bool
	err              error
}

// fetch loads the next chunk. Every chunk is a complete
// RowBinaryWithNamesAndTypes document: a header, then whole rows.
func (r *chdbRows) fetch() error {
	if r.chunk != nil {
		r.chunk.Free()
		r.chunk = nil
	}
	r.rd, r.rowEnd = rbReader{}, 0
	if err := r.ctx.Err(); err != nil {
		return stmtErr("chdb", r.stmt, err)
	}
	var ch *libchdb.Result
	if r.stream != nil {
		var err error
		if ch, err = r.stream.Next(); err != nil {
			return stmtErr("chdb", r.stmt, err)
		}
	} else if ch, r.whole = r.whole, nil; ch == nil {
		r.done = true
		return nil
	}
	b := ch.Bytes()
	if len(b) == 0 {
		ch.Free()
		r.done = true
		return nil
	}
	r.chunk = ch
	r.rd = rbReader{b: b}
	if err := r.readHeader(); err != nil {
		return stmtErr("chdb", r.stmt, fmt.Errorf("result header: %w", err))
	}
	return nil
}

func (r *chdbRows) readHeader() error {
	n, err := r.rd.uvarint()
	if err != nil {
		return err
	}
	if n > uint64(len(r.rd.b)) {
		return errShort
	}
	strs := make([]string, 2*n)
	for i := range strs {
		if strs[i], err = r.rd.str(); err != nil {
			return err
		}
	}
	if r.header != nil {
		if !bytes.Equal(r.header, r.rd.b[:r.rd.off]) {
			return errors.New("result columns changed between chunks")
		}
		return nil
	}
	r.header = bytes.Clone(r.rd.b[:r.rd.off])
	r.cols = make([]Column, n)
	r.types = make([]*chType, n)
	for i := range r.cols {
		r.cols[i] = Column{Name: strs[i], Type: strs[int(n)+i]}
		if r.types[i], err = parseType(r.cols[i].Type); err != nil {
			return fmt.Errorf("column %s: %w", r.cols[i].Name, err)
		}
	}
	return nil
}

func (r *chdbRows) Columns() []Column { return r.cols }

func (r *chdbRows) Next() bool {
	for r.err == nil && !r.done {
		if r.rd.off < len(r.rd.b) {
			// Find the row's end now; Scan decodes it straight into the
			// destinations, so unscanned rows cost no allocation.
			r.rowStart = r.rd.off
			for i, t := range r.types {
				if err := r.rd.skip(t); err != nil {
					r.err = stmtErr("chdb", r.stmt, fmt.Errorf("decode column %s: %w", r.cols[i].Name, err))
					return false
				}
			}
			r.rowEnd = r.rd.off
			if r.rowEnd == r.rowStart {
				// Only a column of type Nothing takes no bytes; such a
				// document would yield rows forever.
				r.err = stmtErr("chdb", r.stmt, errors.New("decode: zero-width row"))
				return false
			}
			return true
		}
		if err := r.fetch(); err != nil {
			r.err = err
		}
	}
	return false
}

func (r *chdbRows) Scan(dest ...any) error {
	if len(dest) != len(r.types) {
		return stmtErr("chdb", r.stmt, fmt.Errorf("scan: %d destinations for %d columns", len(dest), len(r.types)))
	}
	if r.rowEnd == 0 {
		return stmtErr("chdb", r.stmt, errors.New("scan without a row: call Next first"))
	}
	rd := rbReader{b: r.rd.b[:r.rowEnd], off: r.rowStart}
	for i, t := range r.types {
		ok, err := rd.decodeInto(t, dest[i])
		if !ok && err == nil {
			var v any
			if v, err = rd.decode(t); err == nil {
				err = assign(dest[i], v)
			}
		}
		if err != nil {
			return stmtErr("chdb", r.stmt, fmt.Errorf("column %s: %w", r.cols[i].Name, err))
		}
	}
	return nil
}

func (r *chdbRows) Err() error { return r.err }

func (r *chdbRows) Close() error {
	if r.conn == nil {
		return nil
	}
	if r.chunk != nil {
		r.chunk.Free()
		r.chunk = nil
	}
	if r.whole != nil {
		r.whole.Free()
	}
	failed := r.err != nil
	if r.stream != nil {
		if !r.done {
			r.stream.Cancel()
		}
		r.stream.Free()
	}
	if failed {
		r.s.discard(r.conn)
	} else {
		r.s.release(r.conn)
	}
	r.conn = nil
	return nil
}

// insertChunk is how many encoded bytes go to the engine per append.
const insertChunk = 1 << 20

func (s *chdbStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) (err error) {
	stmt, err := insertStatement(table, columns)
	if err != nil {
		return stmtErr("chdb", table, err)
	}
	if len(rows) == 0 {
		return nil
	}
	types, err := s.types.types(ctx, s, table, columns)
	if err != nil {
		return stmtErr("chdb", stmt, err)
	}
	defer func() {
		if err != nil {
			// The table may have changed under us: describe it again next time.
			s.types.forget(table)
		}
	}()
	// Encode everything before touching the engine, so bad input fails
	// the batch before any of it is written.
	buf := make([]byte, 0, min(insertChunk*4, 64*len(rows)*len(columns)))
	var bounds []int
	vals := make([]any, len(columns))
	for i, row := range rows {
		if err := normalizeRow(vals, types, columns, row, i); err != nil {
			return stmtErr("chdb", stmt, err)
		}
		for j, t := range types {
			if buf, err = appendRowBinary(buf, t, vals[j]); err != nil {
				return stmtErr("chdb", stmt, fmt.Errorf("row %d column %s: %w", i, columns[j], err))
			}
		}
		if len(bounds) == 0 && len(buf) >= insertChunk || len(bounds) > 0 && len(buf)-bounds[len(bounds)-1] >= insertChunk {
			bounds = append(bounds, len(buf))
		}
	}
	bounds = append(bounds, len(buf))
	c, err := s.acquire(ctx)
	if err != nil {
		return stmtErr("chdb", stmt, err)
	}
	defer s.release(c)
	in, err := c.StreamInsert([]byte(stmt), "RowBinary")
	if err != nil {
		return stmtErr("chdb", stmt, err)
	}
	defer in.Free()
	start := 0
	for _, end := range bounds {
		if err := ctx.Err(); err != nil {
			return stmtErr("chdb", stmt, err)
		}
		if err := in.Append(buf[start:end]); err != nil {
			return stmtErr("chdb", stmt, err)
		}
		start = end
	}
	return stmtErr("chdb", stmt, in.Done())
}

func (s *chdbStore) ServerVersion(ctx context.Context) (Version, error) {
	s.verOnce.Do(func() {
		var text string
		rows, err := s.Query(ctx, "SELECT version()")
		if err == nil {
			defer rows.Close()
			if rows.Next() {
				err = rows.Scan(&text)
			} else if err = rows.Err(); err == nil {
				err = errors.New("SELECT version() returned no row")
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
