package risk

import (
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// FuzzParseFilter: filters come from HTTP query strings. Parsing never
// panics, and whatever it accepts binds into a statement whose every value
// is a literal (no placeholder left, nothing unquoted).
func FuzzParseFilter(f *testing.F) {
	f.Add("critical,high", "true", "prod", "alice", "Debian:12", "h1", "50")
	f.Add("", "", "", "", "", "", "")
	f.Add("urgent", "maybe", "'; DROP TABLE scans --", "?", "\\", "x", "NaN")
	f.Fuzz(func(t *testing.T, sev, kev, ring, owner, os, host, minRisk string) {
		vals := map[string]string{"severity": sev, "kev": kev, "ring": ring, "owner": owner, "os": os, "host": host, "min-risk": minRisk}
		flt, err := ParseFilter(func(k string) string { return vals[k] })
		if err != nil {
			return
		}
		q, args, err := FindingsSQL(flt, &Page{Limit: 10})
		if err != nil {
			t.Fatalf("accepted filter %+v does not build: %v", flt, err)
		}
		bound, err := store.Bind(q, args...)
		if err != nil {
			t.Fatalf("bind %q %v: %v", q, args, err)
		}
		if !strings.HasPrefix(bound, "SELECT host_id,") || strings.Contains(bound, "DROP TABLE scans --\n") {
			t.Fatalf("bound statement: %s", bound)
		}
	})
}

func TestParseFilter(t *testing.T) {
	vals := map[string]string{"severity": "Critical, high", "kev": "false", "ring": "prod", "min-risk": "42.5"}
	f, err := ParseFilter(func(k string) string { return vals[k] })
	if err != nil || strings.Join(f.Severity, ",") != "critical,high" || f.KEV == nil || *f.KEV || f.Ring != "prod" || f.MinRisk != 42.5 {
		t.Fatalf("%+v %v", f, err)
	}
	for _, bad := range []map[string]string{{"severity": "urgent"}, {"kev": "maybe"}, {"min-risk": "x"}, {"min-risk": "NaN"}, {"min-risk": "101"}} {
		if _, err := ParseFilter(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v: want error", bad)
		}
	}
}
