package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		code       int32
		ok, overld bool
	}{
		{"nil", nil, 0, false, false},
		{"plain", errors.New("connection refused"), 0, false, false},
		{"server exception", &clickhouse.Exception{Code: 241, Message: "Memory limit exceeded"}, 241, true, true},
		{"wrapped server exception", fmt.Errorf("query findings: %w", &clickhouse.Exception{Code: 60}), 60, true, false},
		{"embedded engine message", fmt.Errorf("query: %w", errors.New("Code: 241. DB::Exception: (total) memory limit exceeded: would use 621.00 MiB")), 241, true, true},
		{"embedded type mismatch", errors.New("Code: 53. DB::Exception: Type mismatch"), 53, true, false},
		{"too many queries", errors.New("Code: 202. DB::Exception: Too many simultaneous queries"), 202, true, true},
		{"code-like text only", errors.New("Code: abc. nothing"), 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ok := ErrorCode(tc.err)
			if code != tc.code || ok != tc.ok {
				t.Errorf("ErrorCode = %d, %v; want %d, %v", code, ok, tc.code, tc.ok)
			}
			if got := IsOverloaded(tc.err); got != tc.overld {
				t.Errorf("IsOverloaded = %v, want %v", got, tc.overld)
			}
		})
	}
}
