package testenv

import (
	"testing"
)

// recorder stands in for a test to see whether a finder skipped or failed.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skip(...any)           { r.skipped = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestMissingServiceSkipsOrFailsInCI(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			t.Setenv("PATCHGRID_TEST_KAFKA", "")
			t.Setenv("PATCHGRID_TEST_CLICKHOUSE", "")
			t.Setenv("PATCHGRID_CHDB_LIB", "/nonexistent/libchdb.so")
			for name, find := range map[string]func(testing.TB) string{"Kafka": Kafka, "ClickHouse": ClickHouse, "CHDBLib": CHDBLib} {
				r := &recorder{TB: t}
				find(r)
				if r.failed != (ci == "true") || r.skipped == (ci == "true") {
					t.Errorf("%s with CI=%q: skipped %v failed %v", name, ci, r.skipped, r.failed)
				}
			}
		})
	}
}

func TestSharedDataFound(t *testing.T) {
	t.Setenv("PATCHGRID_SHARED_DATA", "")
	dir := SharedData(t)
	if dir == "" {
		t.Fatal("no dir")
	}
	t.Log(dir)
}

func TestDatabaseNameUnique(t *testing.T) {
	a, b := DatabaseName(t), DatabaseName(t)
	if a == b || len(a) > 64 {
		t.Errorf("names %q %q", a, b)
	}
}
