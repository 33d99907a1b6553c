package report

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// The top risks on chDB: advisories ranked by their highest risk, then by
// hosts, then by id, where several advisories tie at the highest risk that
// reaches the list (the ranking counts hosts only for the advisories the
// list can come from, and those are every one tied with the last). One
// host's list is ranked the same way over its findings only.
func TestTopRisks(t *testing.T) {
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	// advisory → its findings' risk on hosts h0, h1, ...: ADV-TOP is
	// highest; six advisories tie at 40 with 1 to 6 hosts, written in an
	// order that is not the ranking's. Each is the CVSS part and the asset
	// part of a host of unset criticality (patchgrid_risk_asset(0), read
	// from host_facts since 0036); the others are 0.
	type adv struct {
		id    string
		risks []float64
	}
	advs := []adv{
		{"ADV-TOP", []float64{50, 20}},
		{"ADV-T3", []float64{40, 10, 40}},
		{"ADV-T1", []float64{40}},
		{"ADV-T6", []float64{40, 40, 40, 40, 40, 40}},
		{"ADV-T2", []float64{5, 40}},
		{"ADV-T5", []float64{40, 40, 40, 40, 40}},
		{"ADV-T4", []float64{1, 2, 3, 40}},
		{"ADV-LOW", []float64{30, 30, 30, 30, 30, 30, 30, 30}},
	}
	var asset float64
	rows, err := st.Query(ctx, "SELECT patchgrid_risk_asset(toUInt8(0))")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		if err := rows.Scan(&asset); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if asset == 0 {
		t.Fatal("patchgrid_risk_asset(0) read no value")
	}
	var hosts, findings [][]any
	for i := range 8 {
		hosts = append(hosts, []any{fmt.Sprintf("h%d", i), fmt.Sprintf("host-%d", i), now, now})
	}
	for _, a := range advs {
		for h, r := range a.risks {
			findings = append(findings, []any{fmt.Sprintf("h%d", h), "test", a.id, "medium", "Debian:12", "pkg-" + a.id,
				"1.0", "affected", "1.1", now, r - asset, uint64(len(findings) + 1), uint64(1)})
		}
	}
	if err := st.Insert(ctx, "host_facts", []string{"host_id", "hostname", "last_scan_at", "as_of"}, hosts); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "finding_risk_base", []string{"host_id", "source", "advisory_id", "severity", "ecosystem", "package",
		"installed_version", "status", "fixed_version", "clock_start", "risk_cvss", "row_key", "version"}, findings); err != nil {
		t.Fatal(err)
	}
	ids := func(ts []TopRisk) []string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = fmt.Sprintf("%s:%g:%d", t.AdvisoryID, t.MaxRisk, t.Hosts)
		}
		return out
	}
	for _, c := range []struct {
		host string
		n    int
		want []string
	}{
		{"", 1, []string{"ADV-TOP:50:2"}},
		{"", 2, []string{"ADV-TOP:50:2", "ADV-T6:40:6"}},
		{"", 4, []string{"ADV-TOP:50:2", "ADV-T6:40:6", "ADV-T5:40:5", "ADV-T4:40:4"}},
		{"", 8, []string{"ADV-TOP:50:2", "ADV-T6:40:6", "ADV-T5:40:5", "ADV-T4:40:4", "ADV-T3:40:3", "ADV-T2:40:2", "ADV-T1:40:1", "ADV-LOW:30:8"}},
		{"", 20, []string{"ADV-TOP:50:2", "ADV-T6:40:6", "ADV-T5:40:5", "ADV-T4:40:4", "ADV-T3:40:3", "ADV-T2:40:2", "ADV-T1:40:1", "ADV-LOW:30:8"}},
		// On h1: ADV-T2, T3 (10), T4 (2), T5, T6 at 40, LOW at 30, TOP at 20.
		{"h1", 2, []string{"ADV-T2:40:1", "ADV-T5:40:1"}},
		{"h1", 5, []string{"ADV-T2:40:1", "ADV-T5:40:1", "ADV-T6:40:1", "ADV-LOW:30:1", "ADV-TOP:20:1"}},
		{"h7", 3, []string{"ADV-LOW:30:1"}},
		{"h9", 3, []string{}},
	} {
		got, err := top(ctx, st, c.host, c.n)
		if err != nil {
			t.Fatalf("top %d of %q: %v", c.n, c.host, err)
		}
		if g := ids(got); !slices.Equal(g, c.want) {
			t.Errorf("top %d of %q:\n got %v\nwant %v", c.n, c.host, g, c.want)
		}
	}
}
