package consumer

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// errClass says whether retrying a failed insert can help.
type errClass uint8

const (
	// classTemporary: the store or the way to it is failing (network,
	// restart, overload, too many parts, missing table or grants). The
	// same rows will go in once it recovers: retried with backoff, without
	// limit, like a broker outage.
	classTemporary errClass = iota + 1
	// classPermanent: the rows themselves are refused (a value the column
	// cannot hold, a type mismatch, a column the table no longer has).
	// Retrying cannot help: the messages at fault are dead-lettered.
	classPermanent
	// classUnknown: an error this table does not know. Retried
	// Config.UnclassifiedAttempts times, then handled as permanent, so that
	// an unforeseen error stalls a partition for seconds, not for good.
	classUnknown
)

func (c errClass) String() string {
	switch c {
	case classTemporary:
		return "temporary"
	case classPermanent:
		return "permanent"
	}
	return "unclassified"
}

// errScope is how much of an insert a permanent error condemns.
type errScope uint8

const (
	scopeUnknown   errScope = iota // some rows: find them by bisection
	scopeRow                       // one row, named by a store.RowError
	scopeStatement                 // every row of the statement's table
)

// ClickHouse server error codes (src/Common/ErrorCodes.cpp); the same codes
// appear in chDB's messages as "Code: N.".
var (
	temporaryCodes = map[int32]bool{
		60: true, 81: true, // UNKNOWN_TABLE, UNKNOWN_DATABASE: not created yet, or being migrated
		159: true, 160: true, // TIMEOUT_EXCEEDED, TOO_SLOW
		164: true, 242: true, // READONLY, TABLE_IS_READ_ONLY
		173: true, 241: true, // CANNOT_ALLOCATE_MEMORY, MEMORY_LIMIT_EXCEEDED
		192: true, 193: true, 194: true, 195: true, 497: true, 516: true, // users, passwords, grants: fixed by an operator
		202: true, 203: true, // TOO_MANY_SIMULTANEOUS_QUERIES, NO_FREE_CONNECTION
		209: true, 210: true, 279: true, // SOCKET_TIMEOUT, NETWORK_ERROR, ALL_CONNECTION_TRIES_FAILED
		236: true, 394: true, // ABORTED, QUERY_WAS_CANCELLED (server shutting down)
		243: true,            // NOT_ENOUGH_SPACE
		252: true,            // TOO_MANY_PARTS: inserts outrun merges
		425: true, 439: true, // SYSTEM_ERROR, CANNOT_SCHEDULE_TASK
		999: true, // KEEPER_EXCEPTION
	}
	// permanentCodes maps data and schema errors to their scope.
	permanentCodes = map[int32]errScope{
		6: scopeUnknown, 26: scopeUnknown, 27: scopeUnknown, 38: scopeUnknown, 41: scopeUnknown, 72: scopeUnknown, // CANNOT_PARSE_*
		53: scopeUnknown, 70: scopeUnknown, // TYPE_MISMATCH, CANNOT_CONVERT_TYPE
		69: scopeUnknown, 321: scopeUnknown, // ARGUMENT_OUT_OF_BOUND, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
		117: scopeUnknown, 131: scopeUnknown, // INCORRECT_DATA, TOO_LARGE_STRING_SIZE
		190: scopeUnknown, 349: scopeUnknown, 691: scopeUnknown, // array sizes, NULL in non-Nullable, UNKNOWN_ELEMENT_OF_ENUM
		8: scopeStatement, 10: scopeStatement, 16: scopeStatement, // THERE_IS_NO_COLUMN, NOT_FOUND_COLUMN_IN_BLOCK, NO_SUCH_COLUMN_IN_TABLE
		20: scopeStatement, 44: scopeStatement, 47: scopeStatement, // NUMBER_OF_COLUMNS_DOESNT_MATCH, ILLEGAL_COLUMN, UNKNOWN_IDENTIFIER
	}
)

// classify decides whether retrying err can help, and for a permanent error
// how many rows it condemns.
func classify(err error) (errClass, errScope) {
	var re *store.RowError
	switch {
	case errors.As(err, &re):
		return classPermanent, scopeRow
	case errors.Is(err, store.ErrUnknownColumn):
		return classPermanent, scopeStatement
	}
	code, ok := store.ErrorCode(err)
	if ok {
		if temporaryCodes[code] {
			return classTemporary, scopeUnknown
		}
		if s, ok := permanentCodes[code]; ok {
			return classPermanent, s
		}
		return classUnknown, scopeUnknown
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, clickhouse.ErrAcquireConnTimeout), errors.Is(err, clickhouse.ErrConnectionClosed),
		// The driver's own deadline (the store's context is not done:
		// the caller checks that first).
		errors.Is(err, context.DeadlineExceeded):
		return classTemporary, scopeUnknown
	}
	return classUnknown, scopeUnknown
}
