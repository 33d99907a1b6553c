package store

import (
	"errors"
	"regexp"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// chdbCode finds the code in an embedded engine's message: "Code: 53. DB::Exception: ...".
var chdbCode = regexp.MustCompile(`\bCode: (\d+)\.`)

// ErrorCode is the ClickHouse error code in err (src/Common/ErrorCodes.cpp),
// from the server's exception or from the embedded engine's message, which
// carries the same codes as "Code: N.".
func ErrorCode(err error) (int32, bool) {
	if err == nil {
		return 0, false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code, true
	}
	if m := chdbCode.FindStringSubmatch(err.Error()); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 32)
		return int32(n), err == nil
	}
	return 0, false
}

// overloadCodes are the engine's answers to a query that did not fit the
// resources it may use right now: the memory budget (alone, or shared with
// concurrent queries through the overcommit tracker) or the concurrency cap.
// The same query can succeed once the load passes.
var overloadCodes = map[int32]bool{
	173: true, // CANNOT_ALLOCATE_MEMORY
	241: true, // MEMORY_LIMIT_EXCEEDED
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	203: true, // NO_FREE_CONNECTION
}

// IsOverloaded reports whether err is the engine refusing a query for lack
// of memory or of query slots: a retry later can help, and a server should
// answer it as "busy", not as its own failure.
func IsOverloaded(err error) bool {
	code, ok := ErrorCode(err)
	return ok && overloadCodes[code]
}
