// Package membudget states how much memory one fleet-wide ClickHouse
// statement may use, as engine settings: a hard cap (max_memory_usage: a
// statement that would pass it fails with an error instead of taking the
// machine's memory), spilling of GROUP BY and ORDER BY to disk beyond half of
// it, and the threads it runs on. The refresh's segment and exposure
// statements run within one Budget, so their peak is set by configuration,
// not by the size of the fleet; sharding by host keeps each statement's
// working set small enough to stay within it. (The refresh's copies of the
// fleet-wide KPI views are not sharded: they aggregate per host group
// first, and run within the same Budget unless given one of their own.)
package membudget

import (
	"fmt"
	"regexp"
	"strings"
)

// Budget is the memory one statement may use. Zero values are defaults.
type Budget struct {
	// Bytes caps one statement (max_memory_usage). Default DefaultBytes.
	Bytes uint64
	// SpillBytes is where GROUP BY and ORDER BY start spilling to disk
	// (max_bytes_before_external_group_by / _sort). Default Bytes / 2.
	SpillBytes uint64
	// Threads caps the threads of one statement (max_threads); each holds
	// its own hash tables, so fewer threads use less memory. Default 0:
	// the engine's (the number of cores).
	Threads int
}

// DefaultBytes is the default cap of one statement: with the Go process
// and chDB's caches it keeps `patchgrid run` within 2 GB.
const DefaultBytes = 1536 << 20

func (b Budget) withDefaults() Budget {
	if b.Bytes == 0 {
		b.Bytes = DefaultBytes
	}
	if b.SpillBytes == 0 {
		b.SpillBytes = b.Bytes / 2
	}
	return b
}

// Settings is the budget as a ClickHouse SETTINGS list (without the
// keyword).
func (b Budget) Settings() string {
	b = b.withDefaults()
	s := fmt.Sprintf("max_memory_usage = %d, max_bytes_before_external_group_by = %d, max_bytes_before_external_sort = %d",
		b.Bytes, b.SpillBytes, b.SpillBytes)
	if b.Threads > 0 {
		s += fmt.Sprintf(", max_threads = %d", b.Threads)
	}
	return s
}

// trailingSettings matches a SETTINGS clause that ends a statement: name =
// value pairs (numbers, identifiers or quoted strings), nothing after.
var trailingSettings = regexp.MustCompile(`(?is)\bSETTINGS\s+[a-z_0-9]+\s*=\s*(?:'[^']*'|[a-z_0-9.]+)(?:\s*,\s*[a-z_0-9]+\s*=\s*(?:'[^']*'|[a-z_0-9.]+))*\s*;?\s*$`)

// Apply returns stmt (a SELECT or INSERT ... SELECT) run within the
// budget: its trailing SETTINGS clause extended, or one added. Settings
// the statement names itself come first and are kept; the budget's follow.
func (b Budget) Apply(stmt string) string {
	stmt = strings.TrimRight(strings.TrimSpace(stmt), ";")
	if trailingSettings.MatchString(stmt) {
		return stmt + ", " + b.Settings()
	}
	return stmt + "\nSETTINGS " + b.Settings()
}
