package kpi

import (
	"context"
	"fmt"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// Size of the synthetic fleet of BenchmarkKPI: hosts × scans scans, each
// on one of inventories inventories holding findingsPerInv findings of
// advisories advisories.
const (
	benchHosts       = 5000
	benchScans       = 10
	benchInventories = 200
	benchFindings    = 25
	benchAdvisories  = 1000
)

// BenchmarkKPI measures the latency of each KPI over a synthetic fleet
// generated inside the engine (INSERT ... SELECT from numbers()).
func BenchmarkKPI(b *testing.B) {
	st := testenv.CHDBStore(b)
	kpitest.Migrate(b, st)
	ctx := context.Background()
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO advisories (source, advisory_id, record_hash, modified, published, withdrawn, cves, severity, cvss_version, cvss_score, loaded_at)
			SELECT 'osv', concat('A', toString(number)), 'h', now(), now() - toIntervalDay(number %% 400), 0, [concat('CVE-2024-', toString(number))],
				['critical', 'high', 'medium', 'low'][number %% 4 + 1], '3.1', toFloat32(number %% 100) / 10, now() FROM numbers(%d)`, benchAdvisories),
		fmt.Sprintf(`INSERT INTO kev (cve, due_date, loaded_at) SELECT concat('CVE-2024-', toString(number)), today() - number %% 60, now() FROM numbers(%d) WHERE number %% 20 = 0`, benchAdvisories),
		fmt.Sprintf(`INSERT INTO epss (cve, epss, percentile, loaded_at) SELECT concat('CVE-2024-', toString(number)), (number %% 1000) / 1000, (number %% 997) / 997, now() FROM numbers(%d)`, benchAdvisories),
		fmt.Sprintf(`INSERT INTO match_inventory_findings (inventory_hash, ecosystem, name, version, source, advisory_id, record_hash, status, matched_at)
			SELECT concat('inv', toString(intDiv(number, %[1]d))), 'Debian:12', concat('p', toString(number %% %[1]d)), '1', 'osv',
				concat('A', toString((number * 7919) %% %[2]d)), 'h', 'affected', now() FROM numbers(%[3]d)`, benchFindings, benchAdvisories, benchInventories*benchFindings),
		fmt.Sprintf(`INSERT INTO scans (host_id, scan_id, scanned_at, received_at, hostname, os_ecosystem, inventory_hash, owner, ring, criticality, internet_facing)
			SELECT concat('h', toString(intDiv(number, %[1]d))) AS h, toString(number), now() - toIntervalDay(10 * (number %% %[1]d)) AS t, t, h, 'Debian:12',
				concat('inv', toString((intDiv(number, %[1]d) + intDiv(number %% %[1]d, 3)) %% %[2]d)),
				['alice', 'bob', 'carol'][number %% 3 + 1], ['test', 'pilot', 'prod'][intDiv(number, %[1]d) %% 3 + 1], intDiv(number, %[1]d) %% 5, intDiv(number, %[1]d) %% 7 = 0
			FROM numbers(%[3]d)`, benchScans, benchInventories, benchHosts*benchScans),
	} {
		if err := st.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	// The base every KPI reads: how much of a KPI's latency is the exposure
	// history (0003) itself.
	b.Run("exposure_history_count", func(b *testing.B) {
		for b.Loop() {
			rows, err := st.Query(ctx, "SELECT count() FROM exposure_history")
			if err != nil {
				b.Fatal(err)
			}
			var n uint64
			for rows.Next() {
				if err := rows.Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
			rows.Close()
			b.ReportMetric(float64(n), "exposures")
		}
	})
	for _, k := range All() {
		b.Run(k.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Run(ctx, st, k.Name, Query{Dimension: "ring"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
