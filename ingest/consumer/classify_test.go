package consumer

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/patchgrid/patchgrid/schemas/store"
)

func TestClassify(t *testing.T) {
	wrap := func(err error) error {
		return &store.Error{Backend: "clickhouse", Statement: "INSERT INTO scans (...)", Err: err}
	}
	ex := func(code int32) error { return wrap(&clickhouse.Exception{Code: code, Message: "x"}) }
	for _, tc := range []struct {
		name  string
		err   error
		class errClass
		scope errScope
	}{
		{"connection refused", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), classTemporary, scopeUnknown},
		{"reset mid-insert", wrap(fmt.Errorf("write: %w", syscall.ECONNRESET)), classTemporary, scopeUnknown},
		{"server closed the connection", wrap(io.EOF), classTemporary, scopeUnknown},
		{"bad conn", wrap(driver.ErrBadConn), classTemporary, scopeUnknown},
		{"driver deadline", wrap(context.DeadlineExceeded), classTemporary, scopeUnknown},
		{"pool exhausted", wrap(clickhouse.ErrAcquireConnTimeout), classTemporary, scopeUnknown},
		{"too many parts", ex(252), classTemporary, scopeUnknown},
		{"memory limit", ex(241), classTemporary, scopeUnknown},
		{"table not there yet", ex(60), classTemporary, scopeUnknown},
		{"wrong password", ex(516), classTemporary, scopeUnknown},
		{"type mismatch", ex(53), classPermanent, scopeUnknown},
		{"cannot parse", ex(6), classPermanent, scopeUnknown},
		{"no such column", ex(16), classPermanent, scopeStatement},
		{"unknown code", ex(1002), classUnknown, scopeUnknown},
		{"row the schema refuses", wrap(&store.RowError{Row: 3, Column: "ring", Err: errors.New(`"canary" is not a value of Enum8`)}), classPermanent, scopeRow},
		{"column a migration dropped", wrap(fmt.Errorf("table scans has no column ring: %w", store.ErrUnknownColumn)), classPermanent, scopeStatement},
		{"chDB type mismatch", wrap(errors.New("Code: 53. DB::Exception: Type mismatch in IN or VALUES section")), classPermanent, scopeUnknown},
		{"chDB too many parts", wrap(errors.New("Code: 252. DB::Exception: Too many parts (300)")), classTemporary, scopeUnknown},
		{"something else", errors.New("surprise"), classUnknown, scopeUnknown},
	} {
		class, scope := classify(tc.err)
		if class != tc.class || scope != tc.scope {
			t.Errorf("%s: classify = %s/%d, want %s/%d", tc.name, class, scope, tc.class, tc.scope)
		}
	}
}

func TestPackageSetUnits(t *testing.T) {
	b := &batch{spans: []span{
		{scan: 0, pkgLo: 0, pkgHi: 3, hash: "h1"}, // carries h1
		{scan: 1, hash: ""},                       // heartbeat
		{scan: 2, hash: "h1"},                     // relies on message 0
		{scan: 3, pkgLo: 3, pkgHi: 5, hash: "h2"},
	}}
	got := packageSetUnits(b, []int{0, 1, 2, 3})
	want := [][]int{{0, 2}, {1}, {3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("units %v, want %v", got, want)
	}
	// Rows of a subset, as rowsOf lays them out: packages of 0 (3) then
	// of 3 (2); scans of 1, 3.
	for _, tc := range []struct {
		table string
		row   int
		want  int
	}{
		{"inventory_packages", 0, 0}, {"inventory_packages", 2, 0}, {"inventory_packages", 3, 3},
		{"inventory_packages", 4, 3}, {"inventory_packages", 5, -1}, {"inventory_packages", -1, -1},
		{"scans", 0, 0}, {"scans", 1, 3}, {"scans", 2, -1},
	} {
		if got := rowOwner(b, []int{0, 3}, tc.table, tc.row); got != tc.want {
			t.Errorf("owner of %s row %d = %d, want %d", tc.table, tc.row, got, tc.want)
		}
	}
}
