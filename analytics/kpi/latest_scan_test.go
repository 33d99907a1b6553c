package kpi

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The views of each host's latest scan and of end-of-life releases
// (0035): the latest scan is the greatest (scanned_at, scan_id), whatever
// the release of earlier scans; a host is on an end-of-life release only
// if its latest scan is, and its exposure starts at its first scan of
// that release.
func TestLatestScanViews(t *testing.T) {
	st, fleet := seeded(t)
	ctx := context.Background()
	scan := func(host, id string, day int, eco, owner string) []any {
		at := fleet.Day(day)
		return []any{host, id, at, at, host + ".example", "debian", "", eco, "inv-" + id, owner, "prod", uint8(1), uint8(0)}
	}
	rows := [][]any{
		// h6 left an end-of-life release; its two latest scans share a
		// second, and the greater scan_id is the latest.
		scan("h6", "h6-1", 30, "Debian:10", "a"),
		scan("h6", "h6-2", 20, "Debian:12", "b"),
		scan("h6", "h6-3b", 10, "Debian:12", "d"),
		scan("h6", "h6-3a", 10, "Debian:12", "c"),
		// h7 moved to one.
		scan("h7", "h7-1", 25, "Debian:12", "e"),
		scan("h7", "h7-2", 15, "Debian:10", "f"),
		scan("h7", "h7-3", 5, "Debian:10", "g"),
	}
	if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_id", "os_version", "os_ecosystem",
		"inventory_hash", "owner", "ring", "criticality", "internet_facing"}, rows); err != nil {
		t.Fatal(err)
	}
	day := func(d int) string { return fleet.Day(d).UTC().Format(time.RFC3339) }
	for _, c := range []struct {
		name, query string
		want        []string
	}{
		{"kpi_hosts", "SELECT host_id, owner, os, last_scan_at FROM kpi_hosts WHERE host_id IN ('h6', 'h7') ORDER BY host_id",
			[]string{"h6 d Debian:12 " + day(10), "h7 g Debian:10 " + day(5)}},
		{"host_last_scan", "SELECT host_id, scan_id, os_ecosystem, last_scanned_at FROM host_last_scan WHERE host_id IN ('h6', 'h7') ORDER BY host_id",
			[]string{"h6 h6-3b Debian:12 " + day(10), "h7 h7-3 Debian:10 " + day(5)}},
		{"eol_findings", "SELECT host_id, os_ecosystem, last_scanned_at FROM eol_findings WHERE host_id IN ('h6', 'h7') ORDER BY host_id",
			[]string{"h7 Debian:10 " + day(5)}},
		{"eol_exposures", "SELECT host_id, advisory_id, first_seen, last_seen FROM eol_exposures WHERE host_id IN ('h6', 'h7') ORDER BY host_id",
			[]string{"h7 EOL-Debian:10 " + day(15) + " " + day(5)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := st.Query(ctx, c.query)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got []string
			for r.Next() {
				vals := make([]any, len(r.Columns()))
				ptrs := make([]any, len(vals))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := r.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				line := ""
				for i, v := range vals {
					if i > 0 {
						line += " "
					}
					if tm, ok := v.(time.Time); ok {
						v = tm.UTC().Format(time.RFC3339)
					}
					line += fmt.Sprint(v)
				}
				got = append(got, line)
			}
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
