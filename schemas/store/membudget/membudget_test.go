package membudget

import "testing"

func TestApply(t *testing.T) {
	b := Budget{Bytes: 1000, Threads: 2}
	const set = "max_memory_usage = 1000, max_bytes_before_external_group_by = 500, max_bytes_before_external_sort = 500, max_threads = 2"
	for _, tc := range []struct{ name, in, want string }{
		{"no settings", "SELECT 1", "SELECT 1\nSETTINGS " + set},
		{"trailing semicolon", "SELECT 1;\n", "SELECT 1\nSETTINGS " + set},
		{"own settings kept", "INSERT INTO t SELECT * FROM v SETTINGS join_use_nulls = 0", "INSERT INTO t SELECT * FROM v SETTINGS join_use_nulls = 0, " + set},
		{"several own settings", "SELECT 1 SETTINGS a = 1, b = 'x y'", "SELECT 1 SETTINGS a = 1, b = 'x y', " + set},
		{"settings inside a subquery only", "SELECT * FROM (SELECT 1 SETTINGS a = 1) AS x WHERE 1", "SELECT * FROM (SELECT 1 SETTINGS a = 1) AS x WHERE 1\nSETTINGS " + set},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.Apply(tc.in); got != tc.want {
				t.Errorf("Apply(%q) =\n%q\nwant\n%q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	want := "max_memory_usage = 1610612736, max_bytes_before_external_group_by = 805306368, max_bytes_before_external_sort = 805306368"
	if got := (Budget{}).Settings(); got != want {
		t.Errorf("default settings %q, want %q", got, want)
	}
}
