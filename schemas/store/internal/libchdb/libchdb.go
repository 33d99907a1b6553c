// Package libchdb binds the C API of libchdb.so (the embedded ClickHouse
// engine) at run time with purego, so patchgrid builds with CGO_ENABLED=0 and
// runs without the 566 MB library whenever a server backend is configured.
//
// It is a thin, unopinionated layer: connection pooling, locking of the data
// directory and result decoding live in package store.
package libchdb

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Lib is a loaded libchdb.so.
type Lib struct {
	Path    string
	Version string

	setSignalHandlers func(int32)
	connect           func(int32, unsafe.Pointer) unsafe.Pointer
	closeConn         func(unsafe.Pointer)
	queryN            func(unsafe.Pointer, unsafe.Pointer, uintptr, unsafe.Pointer, uintptr) unsafe.Pointer
	streamQueryN      func(unsafe.Pointer, unsafe.Pointer, uintptr, unsafe.Pointer, uintptr) unsafe.Pointer
	streamFetch       func(unsafe.Pointer, unsafe.Pointer) unsafe.Pointer
	streamCancel      func(unsafe.Pointer, unsafe.Pointer)
	destroyResult     func(unsafe.Pointer)
	resultBuffer      func(unsafe.Pointer) unsafe.Pointer
	resultLength      func(unsafe.Pointer) uintptr
	resultError       func(unsafe.Pointer) unsafe.Pointer
	resultRowsRead    func(unsafe.Pointer) uint64
	insertN           func(unsafe.Pointer, unsafe.Pointer, uintptr, unsafe.Pointer, uintptr) unsafe.Pointer
	insertAppend      func(unsafe.Pointer, unsafe.Pointer, uintptr) int32
	insertDone        func(unsafe.Pointer) unsafe.Pointer
	insertError       func(unsafe.Pointer) unsafe.Pointer
	insertDestroy     func(unsafe.Pointer)
	version           func() unsafe.Pointer
}

var (
	loadMu sync.Mutex
	loaded = map[string]*Lib{}
)

// Load opens libchdb.so at path (once per process: dlopen of the same file
// returns the same engine anyway) and resolves the functions patchgrid uses.
func Load(path string) (*Lib, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if l, ok := loaded[path]; ok {
		return l, nil
	}
	h, err := dlopen(path)
	if err != nil {
		return nil, fmt.Errorf("load chDB library %s: %w", path, err)
	}
	l := &Lib{Path: path}
	syms := []struct {
		fn   any
		name string
	}{
		{&l.setSignalHandlers, "chdb_set_signal_handlers_enabled"},
		{&l.connect, "chdb_connect"},
		{&l.closeConn, "chdb_close_conn"},
		{&l.queryN, "chdb_query_n"},
		{&l.streamQueryN, "chdb_stream_query_n"},
		{&l.streamFetch, "chdb_stream_fetch_result"},
		{&l.streamCancel, "chdb_stream_cancel_query"},
		{&l.destroyResult, "chdb_destroy_query_result"},
		{&l.resultBuffer, "chdb_result_buffer"},
		{&l.resultLength, "chdb_result_length"},
		{&l.resultError, "chdb_result_error"},
		{&l.resultRowsRead, "chdb_result_rows_read"},
		{&l.insertN, "chdb_stream_insert_n"},
		{&l.insertAppend, "chdb_stream_append"},
		{&l.insertDone, "chdb_stream_done"},
		{&l.insertError, "chdb_stream_insert_error"},
		{&l.insertDestroy, "chdb_destroy_insert_stream"},
		{&l.version, "chdb_version"},
	}
	for _, s := range syms {
		if err := bind(h, s.name, s.fn); err != nil {
			return nil, fmt.Errorf("load chDB library %s: symbol %s missing (chDB too old?): %w", path, s.name, err)
		}
	}
	l.Version = cString(l.version())
	// ClickHouse installs handlers for SIGSEGV, SIGINT and more; in a Go
	// process they break preemption and the runtime's own fault handling,
	// and the process hangs after a few queries.
	l.setSignalHandlers(0)
	loaded[path] = l
	return l, nil
}

// Conn is one chDB connection. A connection runs one statement at a time;
// callers serialize use of a Conn.
type Conn struct {
	lib    *Lib
	handle unsafe.Pointer // chdb_connection* as returned by chdb_connect
}

// Connect opens a connection with command-line style arguments, e.g.
// "--path=/data/dir".
func (l *Lib) Connect(args ...string) (*Conn, error) {
	argv := append([]string{"clickhouse"}, args...)
	bufs := make([][]byte, len(argv))
	ptrs := make([]unsafe.Pointer, len(argv)+1)
	for i, a := range argv {
		bufs[i] = append([]byte(a), 0)
		ptrs[i] = unsafe.Pointer(&bufs[i][0])
	}
	h := l.connect(int32(len(argv)), unsafe.Pointer(&ptrs[0]))
	runtime.KeepAlive(bufs)
	runtime.KeepAlive(ptrs)
	if h == nil || *(*unsafe.Pointer)(h) == nil {
		return nil, fmt.Errorf("chdb_connect %v failed (is the data directory used by another process, or unwritable?)", args)
	}
	return &Conn{lib: l, handle: h}, nil
}

func (c *Conn) conn() unsafe.Pointer { return *(*unsafe.Pointer)(c.handle) }

// Close closes the connection. Closing the last connection of the process
// shuts the engine down.
func (c *Conn) Close() {
	if c.handle != nil {
		c.lib.closeConn(c.handle)
		c.handle = nil
	}
}

// Result is a query result (or one chunk of a streamed result). Its Bytes are
// C memory, valid until Free.
type Result struct {
	lib *Lib
	ptr unsafe.Pointer
}

// Bytes returns the result data without copying; it is valid until Free.
func (r *Result) Bytes() []byte {
	p := r.lib.resultBuffer(r.ptr)
	n := r.lib.resultLength(r.ptr)
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}

// RowsRead is the number of rows in the result.
func (r *Result) RowsRead() uint64 { return r.lib.resultRowsRead(r.ptr) }

// Err is the engine's error for this result, or nil.
func (r *Result) Err() error {
	if e := r.lib.resultError(r.ptr); e != nil {
		return errors.New(cString(e))
	}
	return nil
}

// Free releases the result.
func (r *Result) Free() {
	if r.ptr != nil {
		r.lib.destroyResult(r.ptr)
		r.ptr = nil
	}
}

// Query runs query (binary-safe) and returns its whole result in format.
// The caller must Free the result; on error it is already freed.
func (c *Conn) Query(query []byte, format string) (*Result, error) {
	q, ql := bytesArg(query)
	f, fl := bytesArg([]byte(format))
	p := c.lib.queryN(c.conn(), q, ql, f, fl)
	runtime.KeepAlive(query)
	if p == nil {
		return nil, errors.New("chdb_query_n returned no result")
	}
	r := &Result{lib: c.lib, ptr: p}
	if err := r.Err(); err != nil {
		r.Free()
		return nil, err
	}
	return r, nil
}

// Stream is a streaming query: its result arrives in chunks.
type Stream struct {
	c   *Conn
	ptr unsafe.Pointer
}

// StreamQuery starts a streaming query.
func (c *Conn) StreamQuery(query []byte, format string) (*Stream, error) {
	q, ql := bytesArg(query)
	f, fl := bytesArg([]byte(format))
	p := c.lib.streamQueryN(c.conn(), q, ql, f, fl)
	runtime.KeepAlive(query)
	if p == nil {
		return nil, errors.New("chdb_stream_query_n returned no result")
	}
	s := &Stream{c: c, ptr: p}
	if err := (&Result{lib: c.lib, ptr: p}).Err(); err != nil {
		c.lib.destroyResult(p)
		return nil, err
	}
	return s, nil
}

// Next fetches the next chunk; an empty chunk (len(Bytes()) == 0) ends the
// stream. The caller Frees each chunk.
func (s *Stream) Next() (*Result, error) {
	p := s.c.lib.streamFetch(s.c.conn(), s.ptr)
	if p == nil {
		return nil, errors.New("chdb_stream_fetch_result returned no result")
	}
	r := &Result{lib: s.c.lib, ptr: p}
	if err := r.Err(); err != nil {
		r.Free()
		return nil, err
	}
	return r, nil
}

// Cancel stops the stream early.
func (s *Stream) Cancel() { s.c.lib.streamCancel(s.c.conn(), s.ptr) }

// Free releases the stream handle.
func (s *Stream) Free() {
	if s.ptr != nil {
		s.c.lib.destroyResult(s.ptr)
		s.ptr = nil
	}
}

// Insert is a streaming INSERT.
type Insert struct {
	c   *Conn
	ptr unsafe.Pointer
}

// StreamInsert starts "INSERT INTO t (cols)" taking data in format.
func (c *Conn) StreamInsert(query []byte, format string) (*Insert, error) {
	q, ql := bytesArg(query)
	f, fl := bytesArg([]byte(format))
	p := c.lib.insertN(c.conn(), q, ql, f, fl)
	runtime.KeepAlive(query)
	if p == nil {
		return nil, errors.New("chdb_stream_insert_n returned no stream")
	}
	in := &Insert{c: c, ptr: p}
	if e := c.lib.insertError(p); e != nil {
		err := errors.New(cString(e))
		in.Free()
		return nil, err
	}
	return in, nil
}

// Append sends one chunk of encoded rows; the engine copies it.
func (in *Insert) Append(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	rc := in.c.lib.insertAppend(in.ptr, unsafe.Pointer(&data[0]), uintptr(len(data)))
	runtime.KeepAlive(data)
	if rc != 0 {
		if e := in.c.lib.insertError(in.ptr); e != nil {
			return errors.New(cString(e))
		}
		return errors.New("chdb_stream_append failed")
	}
	return nil
}

// Done commits the INSERT.
func (in *Insert) Done() error {
	p := in.c.lib.insertDone(in.ptr)
	if p == nil {
		if e := in.c.lib.insertError(in.ptr); e != nil {
			return errors.New(cString(e))
		}
		return errors.New("chdb_stream_done returned no result")
	}
	r := &Result{lib: in.c.lib, ptr: p}
	defer r.Free()
	return r.Err()
}

// Free releases the insert stream, cancelling it if not done.
func (in *Insert) Free() {
	if in.ptr != nil {
		in.c.lib.insertDestroy(in.ptr)
		in.ptr = nil
	}
}

func bytesArg(b []byte) (unsafe.Pointer, uintptr) {
	if len(b) == 0 {
		var zero = [1]byte{}
		return unsafe.Pointer(&zero[0]), 0
	}
	return unsafe.Pointer(&b[0]), uintptr(len(b))
}

func cString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}
