// Package kpitest seeds a store with a small fleet whose timeline is known
// exactly, so KPI, risk, export and API tests compare against numbers worked
// out by hand (see Fleet's comments and the expectations in the tests).
package kpitest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Migrate applies the schema migrations (schemas.Migrate) to st.
func Migrate(t testing.TB, st store.Store) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := schemas.Migrate(context.Background(), st, log); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := schemas.RequireAnalytics(context.Background(), st); err != nil {
		t.Fatalf("KPI views unavailable: %v", err)
	}
}

// Fleet is the fixture's clock: every timestamp is Now minus whole days, so
// durations between them are whole days.
type Fleet struct {
	Now time.Time
}

// Day is Now minus d days.
func (f Fleet) Day(d int) time.Time { return f.Now.Add(-time.Duration(d) * 24 * time.Hour) }

// KEVDue is the KEV dueDate of CVE-2024-0001 (the calendar day 20 days ago)
// and KEVDeadline its end, 23:59:59 UTC, which is A1's SLA deadline.
func (f Fleet) KEVDue() time.Time {
	d := f.Day(20)
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
}
func (f Fleet) KEVDeadline() time.Time { return f.KEVDue().Add(24*time.Hour - time.Second) }

// Seed writes the fleet into st (migrated) and returns its clock.
//
// Advisories (source osv):
//
//	A1 critical CVSS 9.8, published -60d, fix -50d, CVE-2024-0001: KEV due -20d, EPSS 0.9 / pct 0.99
//	A2 high CVSS 7.5, published -40d, fix -35d, CVE-2024-0002: EPSS 0.05 / 0.6
//	A3 medium no CVSS, published -200d, no fix date, CVE-2024-0003: no EPSS
//	A4 low CVSS 3.1, published -100d, fix -100d, CVE-2024-0004: EPSS 0.001 / 0.1
//
// Inventories: inv-a {pkga: A1, pkgb: A2}, inv-b {pkgb: A2}, inv-c {},
// inv-d {pkgc: A3, pkgd: A4}, inv-e {pkgd: A4}.
//
// Hosts and scans (days ago: inventory):
//
//	h1 prod  alice crit 4 internet Debian:12   -45 a, -31 b, -10 c, -1 c
//	h2 prod  bob   crit 2          Debian:12   -45 a, -20 a, -2 a
//	h3 test  alice crit 0          Alpine:v3.22 -150 d, -100 e, -2 e
//	h4 pilot bob   crit 3          Debian:12   -45 c, -1 c
//
// Exposures: h1/A1 -45..-31 (14d), h1/A2 -45..-10 (35d), h2/A1 open since
// -45, h2/A2 open since -45, h3/A3 -150..-100 (50d), h3/A4 open since -150.
//
// Every host was scanned within the stale limit (72 hours) and runs a
// release still supported (eol_releases), so the fleet has no stale host
// and no end-of-life finding: tests of those add hosts of their own.
func Seed(t testing.TB, st store.Store) Fleet {
	t.Helper()
	ctx := context.Background()
	f := Fleet{Now: time.Now().UTC().Truncate(time.Second)}
	zero := time.Unix(0, 0).UTC()
	ins := func(table string, cols []string, rows [][]any) {
		t.Helper()
		if err := st.Insert(ctx, table, cols, rows); err != nil {
			t.Fatalf("seed %s: %v", table, err)
		}
	}
	type adv struct {
		id, sev, cve   string
		cvss           float32
		pub, fix       time.Time
		epss, pct      float64
		hasEPSS, inKEV bool
	}
	advs := []adv{
		{"A1", "critical", "CVE-2024-0001", 9.8, f.Day(60), f.Day(50), 0.9, 0.99, true, true},
		{"A2", "high", "CVE-2024-0002", 7.5, f.Day(40), f.Day(35), 0.05, 0.6, true, false},
		{"A3", "medium", "CVE-2024-0003", 0, f.Day(200), zero, 0, 0, false, false},
		{"A4", "low", "CVE-2024-0004", 3.1, f.Day(100), f.Day(100), 0.001, 0.1, true, false},
	}
	var advRows, rangeRows, epssRows [][]any
	for _, a := range advs {
		ver := "3.1"
		if a.cvss == 0 {
			ver = ""
		}
		advRows = append(advRows, []any{"osv", a.id, "h-" + a.id, f.Day(1), a.pub, uint8(0), []string{a.cve}, a.sev, ver, a.cvss, f.Now})
		rangeRows = append(rangeRows, []any{"osv", a.id, "h-" + a.id, "Debian:12", "pkg", uint16(0), "affected", "2.0", a.fix})
		if a.hasEPSS {
			epssRows = append(epssRows, []any{a.cve, a.epss, a.pct, f.Day(1), f.Now})
		}
	}
	ins("advisories", []string{"source", "advisory_id", "record_hash", "modified", "published", "withdrawn", "cves", "severity", "cvss_version", "cvss_score", "loaded_at"}, advRows)
	ins("affected_ranges", []string{"source", "advisory_id", "record_hash", "ecosystem", "package", "range_idx", "status", "fixed", "fix_published"}, rangeRows)
	ins("epss", []string{"cve", "epss", "percentile", "score_date", "loaded_at"}, epssRows)
	ins("kev", []string{"cve", "vendor", "product", "date_added", "due_date", "loaded_at"},
		[][]any{{"CVE-2024-0001", "acme", "widget", f.Day(41), f.KEVDue(), f.Now}})

	finding := func(inv, eco, pkg, adv string) []any {
		var fix time.Time
		for _, a := range advs {
			if a.id == adv {
				fix = a.fix
			}
		}
		return []any{inv, eco, pkg, "1.0", "amd64", pkg, "1.0", "osv", adv, "h-" + adv, "affected", "2.0", fix, f.Now}
	}
	ins("match_inventory_findings", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "match_name", "match_version", "source", "advisory_id", "record_hash", "status", "fixed", "fix_published", "matched_at"},
		[][]any{
			finding("inv-a", "Debian:12", "pkga", "A1"),
			finding("inv-a", "Debian:12", "pkgb", "A2"),
			finding("inv-b", "Debian:12", "pkgb", "A2"),
			finding("inv-d", "Alpine:v3.22", "pkgc", "A3"),
			finding("inv-d", "Alpine:v3.22", "pkgd", "A4"),
			finding("inv-e", "Alpine:v3.22", "pkgd", "A4"),
		})

	type host struct {
		id, ring, owner, osID, osVer, eco string
		crit, inet                        uint8
		scans                             map[int]string
	}
	hosts := []host{
		{"h1", "prod", "alice", "debian", "12", "Debian:12", 4, 1, map[int]string{45: "inv-a", 31: "inv-b", 10: "inv-c", 1: "inv-c"}},
		{"h2", "prod", "bob", "debian", "12", "Debian:12", 2, 0, map[int]string{45: "inv-a", 20: "inv-a", 2: "inv-a"}},
		{"h3", "test", "alice", "alpine", "3.22.1", "Alpine:v3.22", 0, 0, map[int]string{150: "inv-d", 100: "inv-e", 2: "inv-e"}},
		{"h4", "pilot", "bob", "debian", "12", "Debian:12", 3, 0, map[int]string{45: "inv-c", 1: "inv-c"}},
	}
	var scanRows [][]any
	for _, h := range hosts {
		for d, inv := range h.scans {
			at := f.Day(d)
			scanRows = append(scanRows, []any{h.id, h.id + "-" + inv + "-" + at.Format("20060102"), at, at, h.id + ".example", h.osID, h.osVer, h.eco, inv, h.owner, h.ring, h.crit, h.inet})
		}
	}
	ins("scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_id", "os_version", "os_ecosystem", "inventory_hash", "owner", "ring", "criticality", "internet_facing"}, scanRows)
	Refresh(t, st)
	return f
}

// Refresh brings exposure history and the KPI and risk tables up to date
// with what st holds (a full refresh), as a match job's caller does.
func Refresh(t testing.TB, st store.Store) {
	t.Helper()
	job := refresh.Job{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := job.Run(context.Background(), refresh.Full); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}
