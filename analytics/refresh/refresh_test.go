package refresh

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/store/membudget"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// The fleet of the differential test: small enough for a 2-core machine,
// large enough for rollbacks (reopened exposures), drift and several
// inventories per host.
const (
	testHosts = 40
	// 30 days: the last fix wave (released by two thirds of the timeline)
	// has not reached every prod host by the end, so some exposures are
	// still open; with 40 days every one of them is resolved.
	testDays = 30
	// The timeline ends this many days ago: every SLA clock (at most 365
	// days in the default policy) has run out before the test reads the
	// views, so the clock-dependent columns (SLA state, risk's age past
	// SLA, 30-day remediation) cannot change between a refresh and the
	// check that follows it.
	testDaysAgo = 400
)

// kpiKeys are the views 0005 rewrote (the KPIs and finding_risk), with the columns that identify a
// row of each.
var kpiKeys = []struct {
	name string
	keys []string
}{
	{"kpi_mttr", []string{"dimension", "dim_value", "severity"}},
	{"kpi_time_to_patch", []string{"dimension", "dim_value", "severity"}},
	{"kpi_sla_compliance", []string{"policy", "dimension", "dim_value", "severity"}},
	{"kpi_patch_coverage", []string{"policy", "dimension", "dim_value"}},
	{"kpi_open_exposure", []string{"dimension", "dim_value", "severity", "kev", "epss_band"}},
	{"kpi_remediation_rate", []string{"dimension", "dim_value", "risk_level"}},
	{"kpi_exposure_window", []string{"dimension", "dim_value", "severity", "state"}},
	{"kpi_daily_trend", []string{"dimension", "dim_value", "severity", "day"}},
	{"finding_risk", []string{"host_id", "source", "advisory_id", "ecosystem", "package", "installed_version", "arch"}},
}

// lastScan is what the test remembers of a host's latest scan.
type lastScan struct {
	index int
	scan  inventory.Scan // without packages
	day   int
}

// TestRefreshDifferential builds a simulated fleet through the real
// pipeline (simulate → publish → Kafka → consumer → match) and holds the
// refresh to the definitions it materializes, after the first refresh and
// after each incremental change: exposure_history against 0003's
// computation (exposure_history_live), and each rewritten KPI against
// 0004's original definition.
func TestRefreshDifferential(t *testing.T) {
	started := time.Now()
	st := testenv.CHDBStore(t)
	shared := testenv.SharedData(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := schemas.Migrate(ctx, st, quiet); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		t.Fatalf("analytics views unavailable: %v", err)
	}
	bodies := originalKPIs(t)
	previous := previousLive(t)
	// 0016 (H4: stale hosts in the KPIs): the simulated history ends
	// testDaysAgo days ago, so every host would be stale, which 0004 did
	// not know; a stale limit longer than that keeps them current.
	if err := st.Insert(ctx, "kpi_settings", []string{"name", "value", "updated_at"},
		[][]any{{"stale_after_hours", float64(24 * (testDaysAgo + testDays + 30)), time.Now().UTC()}}); err != nil {
		t.Fatal(err)
	}

	// Feeds: the Debian advisories only (the bench's quick corpus).
	loader := &feeds.Loader{Store: st, Log: quiet,
		Lookup: func(eco string) (feed.Comparator, error) { return version.Lookup(eco) }}
	if _, err := loader.Load(ctx, filepath.Join(shared, "advisories", "debian12-changelog-derived-osv.zip")); err != nil {
		t.Fatalf("load Debian feed: %v", err)
	}
	// A second SLA policy under which every open exposure is still within
	// its SLA (state 'open'), next to the default one under which all are
	// overdue by now.
	if err := st.Insert(ctx, "sla_policy", []string{"policy", "severity", "sla_days", "kev_due_date", "updated_at"}, [][]any{
		{"long", "critical", uint32(5000), uint8(0), time.Now().UTC()},
		{"long", "high", uint32(5000), uint8(0), time.Now().UTC()},
		{"long", "medium", uint32(5000), uint8(0), time.Now().UTC()},
		{"long", "low", uint32(5000), uint8(0), time.Now().UTC()},
		{"long", "none", uint32(5000), uint8(0), time.Now().UTC()},
		{"long", "unknown", uint32(5000), uint8(0), time.Now().UTC()},
	}); err != nil {
		t.Fatal(err)
	}

	// The fleet, published to an in-process Kafka and ingested.
	dir := filepath.Join(shared, "inventories")
	bases, err := simulate.LoadBases(ctx, dir, simulate.ReadInventory, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ups, err := simulate.LoadUpgrades(filepath.Join(dir, simulate.UpgradesFile))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -(testDaysAgo + testDays - 1))
	fleet, err := simulate.NewFleet(simulate.Config{Endpoints: testHosts, Days: testDays, Seed: 5, Start: start,
		FailureRate: 0.2, DriftRate: 0.01, Logger: quiet}, bases, ups)
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	const topic = "patchgrid.scans.refresh-test"
	for _, tp := range []string{topic, topic + ".dlq"} {
		if err := publish.EnsureTopic(ctx, brokers, tp, 2); err != nil {
			t.Fatal(err)
		}
	}
	prod, err := publish.New(publish.Config{Brokers: brokers, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	last := map[string]*lastScan{}
	hostIndex := map[string]int{}
	for i, e := range fleet.Endpoints {
		hostIndex[e.HostID] = i
	}
	if _, err := fleet.Run(ctx, simulate.PublishSink{P: prod}, simulate.RunOptions{ProgressInterval: -1,
		OnScan: func(day int, s *inventory.Scan) {
			c := *s
			c.Packages = nil
			last[s.HostID] = &lastScan{index: hostIndex[s.HostID], scan: c, day: day}
		}}); err != nil {
		t.Fatal(err)
	}
	ingest := func(now func() time.Time) {
		t.Helper()
		ist, err := consumer.Run(ctx, consumer.Config{Brokers: brokers, Topic: topic, Drain: true, Logger: quiet,
			ProgressInterval: -1, Now: now}, st)
		if err != nil {
			t.Fatalf("ingest: %v", err)
		}
		if ist.DeadLettered != 0 {
			t.Fatalf("ingest dead-lettered %d messages", ist.DeadLettered)
		}
	}
	// The history arrived as it would have from a live fleet: one scan
	// every 30 minutes (received_at, stamped by the consumer), ending days
	// ago. An incremental refresh revisits the hosts with scans received
	// within rescanMargin before the previous watermark: here the last
	// couple of scans, not the whole fleet.
	var received atomic.Int64
	historyStart := time.Now().UTC().Truncate(time.Second).AddDate(0, 0, -30)
	ingest(func() time.Time { return historyStart.Add(time.Duration(received.Add(1)) * 30 * time.Minute) })
	t.Logf("fleet published and ingested: %v", time.Since(started).Round(time.Millisecond))

	matchJob := &match.Job{Store: st, Log: quiet}
	// Several shards of hosts, as at fleet size (1,000 hosts a shard, 10,000
	// a snapshot copy).
	job := &Job{Store: st, Log: quiet, HostsPerShard: 7, SnapshotHostsPerShard: 9}
	step := func(name string, mode Mode) Stats {
		t.Helper()
		t0 := time.Now()
		if _, err := matchJob.Run(ctx, match.Incremental); err != nil {
			t.Fatalf("%s: match: %v", name, err)
		}
		rs, err := job.Run(ctx, mode)
		if err != nil {
			t.Fatalf("%s: refresh: %v", name, err)
		}
		t1 := time.Now()
		checkSegments(ctx, t, st, name)
		checkExposures(ctx, t, st, name)
		checkKPIs(ctx, t, st, name, bodies)
		checkSnapshots(ctx, t, st, name)
		checkPrevious(ctx, t, st, name, previous)
		t.Logf("%s: refresh %+v; match+refresh %v, checks %v", name, statsLine(rs), t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		return rs
	}

	rs := step("initial", Incremental)
	if rs.Hosts != testHosts {
		t.Errorf("initial: refresh rewrote %d hosts, want all %d", rs.Hosts, testHosts)
	}
	h0 := historyStats(ctx, t, st)
	if h0.rows == 0 || h0.reopened == 0 || h0.resolved == 0 || h0.open == 0 || h0.open == h0.rows {
		t.Fatalf("initial exposure history is trivial: %+v", h0)
	}
	t.Logf("initial history: %+v", h0)

	// Step 1: new scans, received now, one day after each host's latest.
	// A third of the hosts switch to another existing inventory (an older
	// one of their own when they had one: exposures they had fixed come
	// back), a third send a heartbeat, one host reboots into another kernel.
	// The first heartbeat of a host with open findings relabels it
	// (another owner, ring and criticality): the base rows hold no host
	// attributes (0036), and the checks hold the views and the groups
	// written from them to the new labels.
	hosts := make([]*lastScan, 0, len(last))
	for _, l := range last {
		hosts = append(hosts, l)
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].index < hosts[j].index })
	_, found := readAll(ctx, t, st, "SELECT DISTINCT host_id FROM finding_risk")
	withFindings := map[string]bool{}
	for _, r := range found {
		withFindings[fmt.Sprint(r[0])] = true
	}
	var switched, beat []string
	kernelHost, lateHost, relabelHost := "", "", ""
	for k, l := range hosts {
		s := l.scan
		s.ScannedAt = s.ScannedAt.Add(24 * time.Hour)
		s.ScanID = s.ScanID + "-step1"
		switch k % 3 {
		case 0:
			pkgs := otherInventory(fleet, l, hosts)
			s.Heartbeat, s.Packages, s.InventoryHash = false, pkgs, inventory.HashPackages(pkgs)
			switched = append(switched, s.HostID)
		case 1:
			s.Heartbeat, s.Packages = true, nil
			if relabelHost == "" && withFindings[s.HostID] {
				s.Meta.Owner, s.Meta.Ring, s.Meta.Criticality = "relabelled-team", "relabelled-ring", s.Meta.Criticality%4+1
				relabelHost = s.HostID
			}
			beat = append(beat, s.HostID)
		case 2:
			switch {
			case kernelHost == "":
				s.Heartbeat, s.Packages = true, nil
				s.KernelRunning = "6.1.0-99-amd64"
				s.KernelsInstalled = append(append([]string(nil), s.KernelsInstalled...), s.KernelRunning)
				kernelHost = s.HostID
			case lateHost == "" && fleet.HashOn(l.index, 5) != l.scan.InventoryHash:
				// A scan that arrives late: taken an hour after the
				// host's scan of day 5, with its current inventory. It
				// splits a segment in the middle of the host's history.
				pkgs := fleet.PackagesOn(l.index, l.day)
				s.ScannedAt = l.scan.ScannedAt.Add(-time.Duration(l.day-5)*24*time.Hour + time.Hour)
				s.ScanID = l.scan.ScanID + "-late"
				s.Heartbeat, s.Packages, s.InventoryHash = false, pkgs, inventory.HashPackages(pkgs)
				lateHost = s.HostID
			default:
				continue
			}
		}
		if err := prod.Publish(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	ingest(func() time.Time { return time.Now().UTC() })
	prev := previousWatermark(ctx, t, st)
	rs = step("step 1 (new scans)", Incremental)
	step1Hosts := uint64(len(switched) + len(beat) + 1)
	if lateHost != "" {
		step1Hosts++
	} else {
		t.Error("step 1: no host for a late scan")
	}
	// The hosts that sent scans, and those whose scans were received within
	// the margin before the previous watermark: the last ones of the history.
	if want := hostsReceivedSince(ctx, t, st, prev.Add(-rescanMargin)); rs.Hosts != want || want < step1Hosts || want >= testHosts {
		t.Errorf("step 1: refresh rewrote %d hosts; want %d (the %d that sent scans and the last of the history), fewer than the %d of the fleet",
			rs.Hosts, want, step1Hosts, testHosts)
	}
	// Of those, only the hosts whose segments changed other than by a
	// heartbeat have their exposures recomputed.
	if want := step1Hosts - uint64(len(beat)); rs.ExposedHosts != want {
		t.Errorf("step 1: refresh recomputed the exposures of %d hosts, want %d (%d switched inventories, 1 rebooted, the late scan's); heartbeats change none",
			rs.ExposedHosts, want, len(switched))
	}
	if relabelHost == "" {
		t.Fatal("step 1: no heartbeat host with open findings to relabel")
	}
	for _, view := range []string{"kpi_exposures", "finding_risk"} {
		var n, relabelled uint64
		if err := queryOne(ctx, st, "SELECT count(), countIf(owner = 'relabelled-team' AND ring = 'relabelled-ring') FROM "+view+" WHERE host_id = ?",
			[]any{relabelHost}, &n, &relabelled); err != nil {
			t.Fatal(err)
		}
		if n == 0 || relabelled != n {
			t.Errorf("step 1: %d of relabelled host %s's %d rows in %s carry its new owner and ring", relabelled, relabelHost, n, view)
		}
	}
	h1 := historyStats(ctx, t, st)
	if h1.reopened <= h0.reopened {
		t.Errorf("step 1: switching hosts back to older inventories reopened nothing: before %+v, after %+v", h0, h1)
	}
	var kernelSegs uint64
	if err := queryOne(ctx, st, `SELECT count() FROM host_segments FINAL WHERE host_id = ? AND is_last = 1 AND kernel_running = '6.1.0-99-amd64'`,
		[]any{kernelHost}, &kernelSegs); err != nil || kernelSegs != 1 {
		t.Errorf("step 1: host %s's last segment does not run the new kernel (%d rows, err %v)", kernelHost, kernelSegs, err)
	}
	t.Logf("step 1 history: %+v", h1)

	// Step 2: an advisory with exposures on several hosts is withdrawn.
	var src, adv string
	var advHosts uint64
	if err := queryOne(ctx, st, `SELECT source, advisory_id, uniqExact(host_id) AS n FROM exposure_history
GROUP BY source, advisory_id ORDER BY n DESC, countIf(exposed_now = 0) DESC, source, advisory_id LIMIT 1`, nil, &src, &adv, &advHosts); err != nil {
		t.Fatal(err)
	}
	if err := st.Exec(ctx, `INSERT INTO advisories (source, advisory_id, record_hash, modified, published, withdrawn, aliases, cves,
    summary, severity, cvss_version, cvss_vector, cvss_score, file, specific, loaded_at)
SELECT source, advisory_id, concat(record_hash, '-withdrawn'), modified + 86400, published, 1, aliases, cves,
    summary, severity, cvss_version, cvss_vector, cvss_score, file, specific, loaded_at + 3600
FROM advisories FINAL WHERE source = ? AND advisory_id = ?`, src, adv); err != nil {
		t.Fatal(err)
	}
	rs = step("step 2 (withdrawal)", Incremental)
	for _, view := range []string{"exposure_history", "exposure_history_live", "kpi_exposures"} {
		var n uint64
		if err := queryOne(ctx, st, "SELECT count() FROM "+view+" WHERE source = ? AND advisory_id = ?", []any{src, adv}, &n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("step 2: withdrawn %s/%s (on %d hosts before) still has %d rows in %s", src, adv, advHosts, n, view)
		}
	}
	if rs.Advisories != 1 {
		t.Errorf("step 2: refresh rewrote %d advisories, want 1 (the withdrawn one)", rs.Advisories)
	}
	if rs.Exposures != advHosts || rs.ExposedHosts != 0 {
		t.Errorf("step 2: refresh wrote %d exposure rows and recomputed %d hosts, want %d (the withdrawn advisory's, deleted) and 0",
			rs.Exposures, rs.ExposedHosts, advHosts)
	}
	// Only those hosts' rows behind kpi_exposures and finding_risk are
	// rewritten (0026): nothing else of the fleet changed.
	if rs.RewrittenHosts != advHosts {
		t.Errorf("step 2: refresh rewrote the base rows of %d hosts, want %d (those exposed to the withdrawn advisory)", rs.RewrittenHosts, advHosts)
	}
	t.Logf("step 2: withdrew %s/%s, exposed on %d hosts", src, adv, advHosts)

	// Step 3: a new advisory covers a version that hosts ran before a fix
	// wave replaced it (and that some still run).
	newAdv := newAdvisory(ctx, t, st, fleet, src)
	prev = previousWatermark(ctx, t, st)
	rs = step("step 3 (new advisory)", Incremental)
	var newRows, newResolved uint64
	if err := queryOne(ctx, st, "SELECT count(), countIf(exposed_now = 0) FROM exposure_history WHERE source = ? AND advisory_id = ?",
		[]any{src, newAdv}, &newRows, &newResolved); err != nil {
		t.Fatal(err)
	}
	if newRows == 0 {
		t.Errorf("step 3: new advisory %s has no exposures", newAdv)
	}
	// Only the advisory changed. Hosts: an incremental refresh revisits
	// every host with a scan received from rescanMargin (an hour) before the
	// previous refresh's watermark (refresh_runs, 0005), and step 1's scans
	// were received moments before it: those hosts are rewritten again,
	// though nothing of theirs changed. With that margin, 0 is unreachable
	// within an hour of step 1.
	if recent := hostsReceivedSince(ctx, t, st, prev.Add(-rescanMargin)); rs.Hosts != recent || recent != step1Hosts {
		t.Errorf("step 3: refresh rewrote %d hosts; want the %d with scans received within the margin (step 1 sent %d)", rs.Hosts, recent, step1Hosts)
	}
	if rs.Advisories != 1 {
		t.Errorf("step 3: refresh rewrote %d advisories, want 1 (the new one)", rs.Advisories)
	}
	if rs.Exposures != newRows || rs.ExposedHosts != 0 {
		t.Errorf("step 3: refresh wrote %d exposure rows and recomputed %d hosts, want %d (the new advisory's) and 0", rs.Exposures, rs.ExposedHosts, newRows)
	}
	var newHosts uint64
	if err := queryOne(ctx, st, "SELECT uniqExact(host_id) FROM exposure_history WHERE source = ? AND advisory_id = ?", []any{src, newAdv}, &newHosts); err != nil {
		t.Fatal(err)
	}
	if rs.RewrittenHosts != newHosts {
		t.Errorf("step 3: refresh rewrote the base rows of %d hosts, want %d (those exposed to the new advisory)", rs.RewrittenHosts, newHosts)
	}
	t.Logf("step 3: new advisory %s exposed %d host(s), %d resolved", newAdv, newRows, newResolved)

	// Step 4: a new EPSS score for the CVE of an advisory many hosts are
	// exposed to. No record, scan or exposure changes: only the hosts
	// exposed (now or before) to the advisories that take that score have
	// their base rows rewritten (0026's advisory_facts).
	var cve string
	if err := queryOne(ctx, st, `SELECT cves[1] FROM kpi_exposures WHERE length(cves) = 1
GROUP BY cves[1] ORDER BY uniqExact(host_id) DESC, cves[1] LIMIT 1`, nil, &cve); err != nil || cve == "" {
		t.Fatalf("step 4: no advisory of one CVE among the exposures (%v)", err)
	}
	for _, q := range []string{
		"CREATE TABLE epss_before ENGINE = MergeTree ORDER BY tuple() AS SELECT source, advisory_id, epss FROM kpi_advisories",
		// Above any score the CVE had (EPSS is at most 1).
		`INSERT INTO epss (cve, epss, percentile, score_date, model_version, loaded_at)
SELECT ?, 0.987, 0.999, today(), 'pgtest', now() + 86400`,
	} {
		args := []any{}
		if strings.Contains(q, "?") {
			args = append(args, cve)
		}
		if err := st.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	var epssHosts, epssAdvisories uint64
	if err := queryOne(ctx, st, `SELECT uniqExact(host_id), uniqExact(source, advisory_id) FROM exposure_history
WHERE (source, advisory_id) IN (
    SELECT source, advisory_id FROM (SELECT source, advisory_id, epss FROM kpi_advisories EXCEPT SELECT source, advisory_id, epss FROM epss_before))`,
		nil, &epssHosts, &epssAdvisories); err != nil {
		t.Fatal(err)
	}
	if epssHosts == 0 {
		t.Fatalf("step 4: the new score of %s changes no exposed advisory", cve)
	}
	rs = step("step 4 (EPSS update)", Incremental)
	if rs.RewrittenHosts != epssHosts || rs.Exposures != 0 || rs.ExposedHosts != 0 {
		t.Errorf("step 4: refresh rewrote the base rows of %d hosts, wrote %d exposure rows and recomputed %d hosts; want %d (those exposed to the %d advisories of %s), 0 and 0",
			rs.RewrittenHosts, rs.Exposures, rs.ExposedHosts, epssHosts, epssAdvisories, cve)
	}
	t.Logf("step 4: new EPSS score of %s: %d advisories, %d hosts rewritten", cve, epssAdvisories, rs.RewrittenHosts)

	// A full refresh rewrites everything and changes nothing.
	if err := st.Exec(ctx, "CREATE TABLE history_before ENGINE = MergeTree ORDER BY tuple() AS SELECT * FROM exposure_history"); err != nil {
		t.Fatal(err)
	}
	rs = step("full", Full)
	if rs.Hosts != testHosts {
		t.Errorf("full: refresh rewrote %d hosts, want %d", rs.Hosts, testHosts)
	}
	compareSets(ctx, t, st, "full refresh", "history_before", "exposure_history")
	if rs.Exposures != 0 {
		t.Errorf("full: refresh wrote %d exposure rows where nothing changed, want 0", rs.Exposures)
	}

	// Nothing new: no base row is rewritten, and the snapshots computed
	// from them alone are left as they were (0028), still equal to
	// their views (checkKPIs); the others are copied again.
	rs = step("nothing new", Incremental)
	if rs.RewrittenHosts != 0 || !reflect.DeepEqual(rs.Unchanged, baseOnlySnapshots) {
		t.Errorf("nothing new: refresh rewrote the base rows of %d hosts and left %v unchanged; want 0 and %v",
			rs.RewrittenHosts, rs.Unchanged, baseOnlySnapshots)
	}
	t.Logf("total %v", time.Since(started).Round(time.Millisecond))
}

// otherInventory is the package list of another inventory for l's host to
// switch to: the latest one of its own older than its current one, else
// the current one of another host.
func otherInventory(f *simulate.Fleet, l *lastScan, hosts []*lastScan) []inventory.Package {
	cur := l.scan.InventoryHash
	for d := l.day - 1; d >= 0; d-- {
		if f.HashOn(l.index, d) != cur {
			return f.PackagesOn(l.index, d)
		}
	}
	for _, o := range hosts {
		if o.scan.InventoryHash != cur {
			return f.PackagesOn(o.index, o.day)
		}
	}
	panic("no other inventory in the fleet")
}

// newAdvisory writes a new advisory record (an advisories row and one
// affected range) of source src that covers the vulnerable version of an
// upgrade path some host ran and returns its id.
func newAdvisory(ctx context.Context, t *testing.T, st store.Store, f *simulate.Fleet, src string) string {
	t.Helper()
	var eco, pkg, fixed, fixedKey string
	var hosts uint64
	// An upgrade path of the fleet: the vulnerable and the fixed version
	// are both stored, and the fixed one sorts after it.
	for _, u := range f.Upgrades {
		err := queryOne(ctx, st, `SELECT v.ecosystem, v.match_name, x.match_version, x.v_key,
    (SELECT uniqExact(host_id) FROM scans WHERE inventory_hash IN (SELECT inventory_hash FROM inventory_packages WHERE name = ? AND version = ?))
FROM (SELECT ecosystem, match_name, v_key FROM inventory_packages WHERE name = ? AND version = ? AND v_key != '' LIMIT 1) AS v
INNER JOIN (SELECT ecosystem, match_name, match_version, v_key FROM inventory_packages WHERE name = ? AND version = ? AND v_key != '' LIMIT 1) AS x
    USING (ecosystem, match_name)
WHERE v.v_key < x.v_key`, []any{u.Package, u.Vulnerable, u.Package, u.Vulnerable, u.Package, u.Fixed}, &eco, &pkg, &fixed, &fixedKey, &hosts)
		if err != nil {
			t.Fatal(err)
		}
		if pkg != "" && hosts >= 3 {
			break
		}
		pkg = ""
	}
	if pkg == "" {
		t.Fatal("no upgrade path of the fleet to write an advisory for")
	}
	const id = "PGTEST-2026-0001"
	now := time.Now().UTC().Truncate(time.Second)
	if err := st.Insert(ctx, "affected_ranges", []string{"source", "advisory_id", "record_hash", "ecosystem", "package", "range_idx",
		"range_type", "status", "comparator", "introduced", "introduced_key", "fixed", "fixed_key", "fix_published"},
		[][]any{{src, id, "pgtest-record-1", eco, pkg, uint16(0), "ECOSYSTEM", "affected", "dpkg", "0", "", fixed, fixedKey, now.AddDate(0, 0, -(testDaysAgo + testDays))}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "advisories", []string{"source", "advisory_id", "record_hash", "modified", "published", "withdrawn",
		"cves", "severity", "cvss_version", "cvss_score", "loaded_at"},
		[][]any{{src, id, "pgtest-record-1", now, now.AddDate(0, 0, -(testDaysAgo + testDays + 10)), uint8(0),
			[]string{"CVE-2099-0001"}, "critical", "3.1", float32(9.1), now}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("step 3: advisory %s covers %s %s before %s (%d hosts ran it)", id, eco, pkg, fixed, hosts)
	return id
}

func previousWatermark(ctx context.Context, t *testing.T, st store.Store) time.Time {
	t.Helper()
	var w time.Time
	if err := queryOne(ctx, st, sqlPreviousWatermark, nil, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

func hostsReceivedSince(ctx context.Context, t *testing.T, st store.Store, since time.Time) uint64 {
	t.Helper()
	var n uint64
	if err := queryOne(ctx, st, "SELECT uniqExact(host_id) FROM scans WHERE received_at >= ?", []any{since}, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

type history struct {
	rows, reopened, resolved, open, hosts uint64
}

func historyStats(ctx context.Context, t *testing.T, st store.Store) history {
	t.Helper()
	var h history
	if err := queryOne(ctx, st, `SELECT count(), countIf(reopened > 0), countIf(resolved_at > toDateTime(0)), countIf(exposed_now = 1), uniqExact(host_id)
FROM exposure_history`, nil, &h.rows, &h.reopened, &h.resolved, &h.open, &h.hosts); err != nil {
		t.Fatal(err)
	}
	return h
}

const historyColumns = "host_id, source, advisory_id, first_seen, last_seen, resolved_at, toUInt64(reopened), exposed_now, toUInt64(exposed_scans)"

// checkExposures holds the materialized exposure history to 0003's
// computation from every scan.
func checkExposures(ctx context.Context, t *testing.T, st store.Store, name string) {
	t.Helper()
	var rows, keys uint64
	if err := queryOne(ctx, st, "SELECT count(), uniqExact(host_id, source, advisory_id) FROM exposure_history", nil, &rows, &keys); err != nil {
		t.Fatal(err)
	}
	if rows != keys {
		t.Errorf("%s: exposure_history has %d rows for %d (host, advisory) keys", name, rows, keys)
	}
	compareSets(ctx, t, st, name, "exposure_history", "exposure_history_live")
}

// checkSegments holds host_segments to its definition: each host's
// segments computed from all its scans, as a full refresh stages them
// (sqlStageSegments), whether the refreshes continued them or not.
func checkSegments(ctx context.Context, t *testing.T, st store.Store, name string) {
	t.Helper()
	const cols = "host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, scans_through"
	for _, q := range []string{"DROP TABLE IF EXISTS cmp_segments",
		"CREATE TABLE cmp_segments ENGINE = MergeTree ORDER BY (host_id, seg_idx) EMPTY AS SELECT * FROM host_segments",
		strings.ReplaceAll(fmt.Sprintf(sqlStageSegments, "1"), "{segments}", "cmp_segments")} {
		if err := st.Exec(ctx, q); err != nil {
			t.Fatalf("%s: segments from all scans: %v", name, err)
		}
	}
	defer func() {
		if err := st.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS cmp_segments"); err != nil {
			t.Error(err)
		}
	}()
	var want, got, onlyWant, onlyGot uint64
	if err := queryOne(ctx, st, fmt.Sprintf(`SELECT (SELECT count() FROM cmp_segments), (SELECT count() FROM host_segments FINAL),
    (SELECT count() FROM (SELECT %[1]s FROM cmp_segments EXCEPT SELECT %[1]s FROM host_segments FINAL)),
    (SELECT count() FROM (SELECT %[1]s FROM host_segments FINAL EXCEPT SELECT %[1]s FROM cmp_segments))`, cols), nil, &want, &got, &onlyWant, &onlyGot); err != nil {
		t.Fatalf("%s: comparing segments: %v", name, err)
	}
	if want == 0 || want != got || onlyWant != 0 || onlyGot != 0 {
		t.Errorf("%s: host_segments has %d segments, %d from all scans; %d only in host_segments, %d only from all scans", name, got, want, onlyGot, onlyWant)
		for _, q := range []string{"SELECT 'stored', " + cols + " FROM host_segments FINAL", "SELECT 'from scans', " + cols + " FROM cmp_segments"} {
			_, rows := readAll(ctx, t, st, q+" ORDER BY host_id, seg_idx LIMIT 20")
			for _, r := range rows {
				t.Logf("  %v", r)
			}
		}
	}
}

// compareSets checks that two relations with exposure_history's columns
// hold the same rows. Each side is computed once, into a table.
func compareSets(ctx context.Context, t *testing.T, st store.Store, name, a, b string) {
	t.Helper()
	for i, src := range []string{a, b} {
		tbl := fmt.Sprintf("cmp_%d", i)
		for _, q := range []string{"DROP TABLE IF EXISTS " + tbl,
			fmt.Sprintf("CREATE TABLE %s ENGINE = MergeTree ORDER BY tuple() AS SELECT %s FROM %s", tbl, historyColumns, src)} {
			if err := st.Exec(ctx, q); err != nil {
				t.Fatalf("%s: copying %s: %v", name, src, err)
			}
		}
	}
	defer func() {
		for _, tbl := range []string{"cmp_0", "cmp_1"} {
			if err := st.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+tbl); err != nil {
				t.Error(err)
			}
		}
	}()
	var na, nb, onlyA, onlyB uint64
	if err := queryOne(ctx, st, `SELECT (SELECT count() FROM cmp_0), (SELECT count() FROM cmp_1),
    (SELECT count() FROM (SELECT * FROM cmp_0 EXCEPT SELECT * FROM cmp_1)),
    (SELECT count() FROM (SELECT * FROM cmp_1 EXCEPT SELECT * FROM cmp_0))`, nil, &na, &nb, &onlyA, &onlyB); err != nil {
		t.Fatalf("%s: comparing %s and %s: %v", name, a, b, err)
	}
	if na == 0 {
		t.Errorf("%s: %s is empty", name, a)
	}
	if na == nb && onlyA == 0 && onlyB == 0 {
		return
	}
	t.Errorf("%s: %s (%d rows) and %s (%d rows) differ: %d rows only in the first, %d only in the second", name, a, na, b, nb, onlyA, onlyB)
	for _, side := range [][3]string{{"cmp_0", "cmp_1", a}, {"cmp_1", "cmp_0", b}} {
		_, rows := readAll(ctx, t, st, fmt.Sprintf("SELECT * FROM (SELECT * FROM %s EXCEPT SELECT * FROM %s) ORDER BY 1, 2, 3 LIMIT 10", side[0], side[1]))
		for _, r := range rows {
			t.Logf("  only in %s: %v", side[2], r)
		}
	}
}

// checkSnapshots holds the views over the refreshed per-host tables
// (kpi_exposures, finding_risk; 0026) and host_risk's snapshot to their
// live definitions. kpi_exposures' window_end and window_days of open
// exposures are as of the refresh, so they are left out.
func checkSnapshots(ctx context.Context, t *testing.T, st store.Store, name string) {
	t.Helper()
	pairs := [][3]string{
		{"kpi_exposures", "kpi_exposures_live", ""},
		{"finding_risk", "finding_risk_live", ""},
		{"host_risk_snapshot", "host_risk_live", ""},
		{"exposure_groups_snapshot", "exposure_groups_live", ""},
		{"risk_groups_snapshot", "risk_groups_live", ""},
		{"duration_groups_snapshot", "duration_groups_live", ""},
	}
	for _, p := range pairs {
		// The snapshot table's columns, read from both sides.
		cols, _ := readAll(ctx, t, st, "SELECT * FROM "+p[0]+" LIMIT 0")
		var names []string
		for _, c := range cols {
			if c.Name != "window_end" && c.Name != "window_days" {
				names = append(names, c.Name)
			}
		}
		p[2] = strings.Join(names, ", ")
		var na, nb, onlyA, onlyB uint64
		q := fmt.Sprintf(`SELECT (SELECT count() FROM %[1]s), (SELECT count() FROM %[2]s),
    (SELECT count() FROM (SELECT %[3]s FROM %[1]s EXCEPT SELECT %[3]s FROM %[2]s)),
    (SELECT count() FROM (SELECT %[3]s FROM %[2]s EXCEPT SELECT %[3]s FROM %[1]s))`, p[0], p[1], p[2])
		if err := queryOne(ctx, st, q, nil, &na, &nb, &onlyA, &onlyB); err != nil {
			t.Fatalf("%s: comparing %s and %s: %v", name, p[0], p[1], err)
		}
		if na != nb || onlyA != 0 || onlyB != 0 || na == 0 {
			t.Errorf("%s: %s (%d rows) and %s (%d rows) differ: %d rows only in the first, %d only in the second", name, p[0], na, p[1], nb, onlyA, onlyB)
			for _, side := range [][2]string{{p[0], p[1]}, {p[1], p[0]}} {
				_, rows := readAll(ctx, t, st, fmt.Sprintf("SELECT * FROM (SELECT %[3]s FROM %[1]s EXCEPT SELECT %[3]s FROM %[2]s) ORDER BY 1, 2, 3 LIMIT 3", side[0], side[1], p[2]))
				for _, r := range rows {
					t.Logf("  only in %s: %v", side[0], r)
				}
			}
		}
	}
}

// rewritten are the KPI and posture views 0021, 0023, 0024, 0029, 0030,
// 0031 and 0033 redefine, with the migration that defined them last
// before them all (each later definition is held to that one) and, for
// 0024 and 0033, the means and sums of floats: those add whole seconds,
// or a group's value n times as one product, where the previous
// definition added floats, so they are held to it within a relative 1e-9
// (as sameValue), every other column exactly.
var rewritten = []struct {
	view      string
	migration int
	means     []string
}{
	{"kpi_open_exposure_live", 16, nil}, {"kpi_sla_compliance_live", 16, nil}, {"kpi_remediation_rate_live", 16, nil},
	{"kpi_exposure_window_live", 16, nil}, {"compliance_posture_live", 19, nil},
	// 0023 (refresh speed) joins findings on one 64-bit key; 0029 names
	// that join's findings side.
	{"finding_risk_live", 16, nil},
	// 0030 (SLA KPIs over groups of exposures); 0021 redefined the two
	// above as well.
	{"kpi_patch_coverage_live", 16, nil}, {"compliance_posture_trend_live", 19, nil},
	// 0024 (medians in bounded memory).
	{"kpi_mttr_live", 16, []string{"mttr_days", "mttr_disclosure_days"}},
	// 0031 (regressions over groups of reopened exposures).
	{"kpi_deploy_regressions_live", 15, nil},
	// 0033 (risk KPIs and the daily trend over groups of exposures);
	// 0021 redefined kpi_remediation_rate_live as well. host_risk adds a
	// group's score n times as one product.
	{"host_risk_live", 16, []string{"risk_total"}}, {"kpi_daily_trend_live", 16, nil},
	{"kpi_time_to_patch_live", 16, []string{"from_publication_avg_days", "from_fix_avg_days", "from_disclosure_avg_days", "from_first_seen_avg_days"}},
}

// previousLive returns the bodies of the views of rewritten as their
// earlier migration defined them.
func previousLive(t *testing.T) map[string]string {
	t.Helper()
	migs, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range migs {
		for _, r := range rewritten {
			if m.Version != r.migration {
				continue
			}
			head := "CREATE VIEW IF NOT EXISTS " + r.view + " AS"
			for _, s := range m.Statements {
				if strings.HasPrefix(s, head) {
					out[r.view] = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s[len(head):]), ";"))
				}
			}
		}
	}
	for _, r := range rewritten {
		if out[r.view] == "" {
			t.Fatalf("migration %d has no view %s", r.migration, r.view)
		}
	}
	return out
}

// checkPrevious holds each view of rewritten to its previous
// definition (among bodies) evaluated on the same tables: the same rows,
// every column compared as text (so that nan equals nan), duplicates
// counted; the means of 0024's views apart, as numbers, in the row of the
// same other columns.
func checkPrevious(ctx context.Context, t *testing.T, st store.Store, name string, bodies map[string]string) {
	t.Helper()
	for _, r := range rewritten {
		body, ok := bodies[r.view]
		if !ok {
			continue
		}
		text, means, offMeans := "toString(tuple(*))", "", "0"
		if len(r.means) > 0 {
			text = "toString(tuple(* EXCEPT (" + strings.Join(r.means, ", ") + ")))"
			var off []string
			for _, m := range r.means {
				means += ", " + m
				off = append(off, fmt.Sprintf("NOT (isNaN(anyIf(%[1]s, side = 1)) AND isNaN(anyIf(%[1]s, side = -1)) OR "+
					"abs(anyIf(%[1]s, side = 1) - anyIf(%[1]s, side = -1)) <= 1e-9 * greatest(abs(anyIf(%[1]s, side = 1)), abs(anyIf(%[1]s, side = -1))))", m))
			}
			offMeans = strings.Join(off, " OR ")
		}
		q := fmt.Sprintf(`SELECT count(), countIf(d > 0), countIf(d < 0), countIf(d = 0 AND off) FROM (
    SELECT r, sum(side) AS d, %[4]s AS off FROM (
        SELECT %[3]s AS r%[5]s, 1 AS side FROM %[1]s
        UNION ALL
        SELECT %[3]s AS r%[5]s, -1 AS side FROM (%[2]s)
    )
    GROUP BY r)`, r.view, body, text, offMeans, means)
		var rows, onlyNew, onlyOld, offRows uint64
		if err := queryOne(ctx, st, q, nil, &rows, &onlyNew, &onlyOld, &offRows); err != nil {
			t.Fatalf("%s: comparing %s with its definition of migration %d: %v", name, r.view, r.migration, err)
		}
		if onlyNew != 0 || onlyOld != 0 || offRows != 0 || rows == 0 {
			t.Errorf("%s: %s differs from its definition of migration %d: %d distinct rows, %d more often in the current one, %d more often in the previous, %d with other means",
				name, r.view, r.migration, rows, onlyNew, onlyOld, offRows)
		}
	}
}

// originalKPIs returns the bodies (the SELECT after AS) of 0004's KPI views.
func originalKPIs(t *testing.T) map[string]string {
	t.Helper()
	migs, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range migs {
		if m.Version != 4 {
			continue
		}
		for _, s := range m.Statements {
			for _, k := range kpiKeys {
				head := "CREATE VIEW IF NOT EXISTS " + k.name + " AS"
				if strings.HasPrefix(s, head) {
					body := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s[len(head):]), ";"))
					out[k.name] = body
				}
			}
		}
	}
	for _, k := range kpiKeys {
		if out[k.name] == "" {
			t.Fatalf("0004 has no view %s", k.name)
		}
	}
	return out
}

// checkKPIs compares each rewritten KPI (its snapshot, as read by
// dashboards) with 0004's definition evaluated on the same exposures.
func checkKPIs(ctx context.Context, t *testing.T, st store.Store, name string, bodies map[string]string) {
	t.Helper()
	for _, k := range kpiKeys {
		wantCols, want := readAll(ctx, t, st, "SELECT * FROM ("+bodies[k.name]+")")
		// 0006 appends columns to some of these views: 0004's columns are
		// held to 0004's definition, the appended ones to the live view.
		allCols, _ := readAll(ctx, t, st, "SELECT * FROM "+k.name+" LIMIT 0")
		var names []string
		for _, c := range wantCols {
			names = append(names, c.Name)
		}
		// 0016 (H4: KPIs with exceptions): each KPI has its rows twice,
		// exceptions honoured and ignored; 0004 knew no exceptions.
		// finding_risk gained one finding per host on an end-of-life
		// release, which host_findings (0004) never had.
		where := ""
		for _, c := range allCols {
			if c.Name == "exceptions" {
				where = " WHERE exceptions = 'ignored'"
			}
		}
		if k.name == "finding_risk" {
			where = " WHERE source != 'endoflife.date'"
		}
		gotCols, got := readAll(ctx, t, st, "SELECT "+strings.Join(names, ", ")+" FROM "+k.name+where)
		if len(allCols) > len(wantCols) {
			checkAppended(ctx, t, st, name, k.name, k.keys, allCols[len(wantCols):])
		}
		if !reflect.DeepEqual(wantCols, gotCols) {
			t.Errorf("%s: %s columns %v, 0004's %v", name, k.name, gotCols, wantCols)
			continue
		}
		if len(want) == 0 {
			t.Errorf("%s: 0004's %s is empty", name, k.name)
		}
		keyIdx := make([]int, len(k.keys))
		for i, key := range k.keys {
			keyIdx[i] = -1
			for j, c := range gotCols {
				if c.Name == key {
					keyIdx[i] = j
				}
			}
			if keyIdx[i] < 0 {
				t.Fatalf("%s has no key column %s", k.name, key)
			}
		}
		keyOf := func(r []any) string {
			var b strings.Builder
			for _, i := range keyIdx {
				fmt.Fprintf(&b, "%v\x00", r[i])
			}
			return b.String()
		}
		sortRows := func(rows [][]any, what string) {
			sort.SliceStable(rows, func(i, j int) bool { return keyOf(rows[i]) < keyOf(rows[j]) })
			for i := 1; i < len(rows); i++ {
				if keyOf(rows[i]) == keyOf(rows[i-1]) {
					t.Errorf("%s: %s %s has two rows with key %q", name, what, k.name, keyOf(rows[i]))
				}
			}
		}
		sortRows(want, "0004's")
		sortRows(got, "rewritten")
		bad := 0
		for i, j := 0, 0; i < len(want) || j < len(got); {
			switch {
			case j >= len(got) || i < len(want) && keyOf(want[i]) < keyOf(got[j]):
				t.Errorf("%s: %s lacks 0004's row %v", name, k.name, want[i])
				i++
				bad++
			case i >= len(want) || keyOf(got[j]) < keyOf(want[i]):
				t.Errorf("%s: %s has a row 0004's lacks: %v", name, k.name, got[j])
				j++
				bad++
			default:
				for c := range gotCols {
					if !sameValue(want[i][c], got[j][c]) {
						t.Errorf("%s: %s key %v column %s = %v, 0004's %v", name, k.name, strings.Split(keyOf(want[i]), "\x00"), gotCols[c].Name, got[j][c], want[i][c])
						bad++
					}
				}
				i++
				j++
			}
			if bad >= 10 {
				t.Errorf("%s: %s: stopping after %d differences", name, k.name, bad)
				break
			}
		}
	}
}

// checkAppended holds the columns 0006 appended to a snapshot (extra) to
// its live view: the same (key, extra) rows on both sides, compared as text
// so that nan equals nan. Floats are rounded to 6 decimals first: a sum
// over exposure_facts' parts, read in parallel, is added in another order
// each time it is read (the snapshot copies write exposure_facts a range of
// hosts at a time, so even a small fleet has several parts).
func checkAppended(ctx context.Context, t *testing.T, st store.Store, name, view string, keys []string, extra []store.Column) {
	t.Helper()
	var cols, aliases []string
	for _, k := range keys {
		cols = append(cols, fmt.Sprintf("toString(%s) AS c%d", k, len(cols)))
	}
	for _, c := range extra {
		if strings.Contains(c.Type, "Float") {
			cols = append(cols, fmt.Sprintf("toString(round(%s, 6)) AS c%d", c.Name, len(cols)))
		} else {
			cols = append(cols, fmt.Sprintf("toString(%s) AS c%d", c.Name, len(cols)))
		}
	}
	for i := range cols {
		aliases = append(aliases, fmt.Sprintf("c%d", i))
	}
	// Each side is computed once: rows tagged 1 (snapshot) and 2 (live);
	// a row seen on one side only keeps that tag alone.
	q := fmt.Sprintf(`SELECT countIf(sides = 1), countIf(sides = 2) FROM (
    SELECT %[3]s, groupBitOr(side) AS sides
    FROM (SELECT %[1]s, 1 AS side FROM %[2]s UNION ALL SELECT %[1]s, 2 AS side FROM %[2]s_live)
    GROUP BY %[3]s)`, strings.Join(cols, ", "), view, strings.Join(aliases, ", "))
	_, rows := readAll(ctx, t, st, q)
	if len(rows) != 1 || fmt.Sprint(rows[0]) != "[0 0]" {
		t.Errorf("%s: %s: (key, appended columns) rows only in the snapshot, only in the live view: %v", name, view, rows)
	}
}

func readAll(ctx context.Context, t *testing.T, st store.Store, q string) ([]store.Column, [][]any) {
	t.Helper()
	rows, err := st.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return cols, out
}

// sameValue compares two result values: floats with a relative tolerance
// of 1e-9 (sums in another order), NaN equal to NaN; the rest exactly.
func sameValue(a, b any) bool {
	fa, aok := a.(float64)
	fb, bok := b.(float64)
	if aok && bok {
		switch {
		case math.IsNaN(fa) || math.IsNaN(fb):
			return math.IsNaN(fa) && math.IsNaN(fb)
		case fa == fb:
			return true
		}
		return math.Abs(fa-fb) <= 1e-9*math.Max(math.Abs(fa), math.Abs(fb))+1e-12
	}
	return reflect.DeepEqual(a, b)
}

func statsLine(s Stats) string {
	return fmt.Sprintf("hosts=%d advisories=%d exposed_hosts=%d exposure_rows=%d segment_rows=%d rewritten_hosts=%d",
		s.Hosts, s.Advisories, s.ExposedHosts, s.Exposures, s.Segments, s.RewrittenHosts)
}

// seedSameSecond writes one advisory A1 found in inventory inv-a (inv-b has
// no finding), marked matched, and scans of host h1: (scan id, days ago,
// inventory, received days ago).
func seedSameSecond(ctx context.Context, t *testing.T, st store.Store, now time.Time, scans [][4]any) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.Insert(ctx, "advisories", []string{"source", "advisory_id", "record_hash", "withdrawn", "loaded_at"}, [][]any{{"osv", "A1", "h1", uint8(0), now}}))
	must(st.Insert(ctx, "match_inventory_findings", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "source", "advisory_id", "record_hash", "matched_at"},
		[][]any{{"inv-a", "Debian:12", "pkga", "1.0", "amd64", "osv", "A1", "h1", now}}))
	must(st.Insert(ctx, "match_done_inventories", []string{"inventory_hash", "matched_at"}, [][]any{{"inv-a", now}, {"inv-b", now}}))
	must(st.Insert(ctx, "match_done_advisories", []string{"source", "advisory_id", "record_hash", "matched_at"}, [][]any{{"osv", "A1", "h1", now}}))
	var rows [][]any
	for _, sc := range scans {
		rows = append(rows, []any{"h1", sc[0], now.AddDate(0, 0, -sc[1].(int)), now.AddDate(0, 0, -sc[3].(int)), sc[2]})
	}
	must(st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "inventory_hash"}, rows))
}

func sameSecondStore(t *testing.T) store.Store {
	t.Helper()
	st := testenv.CHDBStore(t)
	if _, err := schemas.Migrate(context.Background(), st, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// TestRefreshSameSecondScans: two scans of one host in the same second
// with different inventories: only the greater scan_id's counts, in the
// table and in exposure_history_live alike.
func TestRefreshSameSecondScans(t *testing.T) {
	ctx := context.Background()
	st := sameSecondStore(t)
	seedSameSecond(ctx, t, st, time.Now().UTC().Truncate(time.Second), [][4]any{
		{"s1", 10, "inv-a", 0}, {"s2-a", 5, "inv-a", 0}, {"s2-b", 5, "inv-b", 0},
	})
	job := &Job{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := job.Run(ctx, Full); err != nil {
		t.Fatal(err)
	}
	checkSegments(ctx, t, st, "same second")
	compareSets(ctx, t, st, "same second", "exposure_history", "exposure_history_live")
}

// TestRefreshSegmentsShrink: a later scan in the same second as an earlier
// one (greater scan_id) can merge segments (A, B, A becomes A, A, A); the
// rewrite then writes fewer segments than the host had, and the stale ones
// must be marked deleted.
func TestRefreshSegmentsShrink(t *testing.T) {
	ctx := context.Background()
	st := sameSecondStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	seedSameSecond(ctx, t, st, now, [][4]any{{"s1", 10, "inv-a", 2}, {"s2", 5, "inv-b", 2}, {"s3", 2, "inv-a", 2}})
	job := &Job{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := job.Run(ctx, Full); err != nil {
		t.Fatal(err)
	}
	seedScans := [][]any{{"h1", "s2-z", now.AddDate(0, 0, -5), now, "inv-a"}}
	if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "inventory_hash"}, seedScans); err != nil {
		t.Fatal(err)
	}
	if _, err := job.Run(ctx, Incremental); err != nil {
		t.Fatal(err)
	}
	var segs uint64
	if err := queryOne(ctx, st, "SELECT count() FROM host_segments FINAL WHERE host_id = 'h1'", nil, &segs); err != nil {
		t.Fatal(err)
	}
	if segs != 1 {
		t.Errorf("h1 has %d segments, want 1 (inv-a throughout)", segs)
	}
	checkSegments(ctx, t, st, "segments shrink")
	compareSets(ctx, t, st, "segments shrink", "exposure_history", "exposure_history_live")
}

// TestRefreshSegmentsContinue: an incremental refresh continues a host's
// latest segment with its new scans, unless a scan arrived that its stored
// segments did not see (a late one, in an earlier second or in one that
// had a scan already), which makes it recompute them from all its scans.
// Either way host_segments must equal its definition from all scans.
func TestRefreshSegmentsContinue(t *testing.T) {
	ctx := context.Background()
	st := sameSecondStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	seedSameSecond(ctx, t, st, now, [][4]any{{"s1", 10, "inv-a", 2}, {"s2", 9, "inv-a", 2}, {"s3", 8, "inv-b", 2}})
	job := &Job{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := job.Run(ctx, Full); err != nil {
		t.Fatal(err)
	}
	checkSegments(ctx, t, st, "full")
	day := func(d float64) time.Time { return now.Add(-time.Duration(d * 24 * float64(time.Hour))) }
	// Scans are received a second apart, the last four later by hours: a
	// scan received in the hour before the previous refresh (rescanMargin)
	// in a second that has another makes the host recomputed, until it is
	// out of that hour.
	for i, c := range []struct {
		name        string
		scanID      string
		at          time.Time
		inv         string
		resegmented uint64
		segments    uint64 // the host's after the refresh
	}{
		{"heartbeat", "s4", day(7), "inv-b", 0, 2},
		{"another inventory", "s5", day(6), "inv-a", 0, 3},
		{"the same scan delivered again", "s5", day(6), "inv-a", 0, 3},
		{"a late scan in an earlier second", "s0", day(9.5), "inv-b", 1, 5},
		{"a late scan in the latest second, counted over the one there", "s5-z", day(6), "inv-b", 1, 4},
		{"a late scan in an earlier second that had one, not counted", "s1-z", day(9), "inv-b", 1, 4},
		{"heartbeat, within the hour of late scans in seconds that had one", "s6", day(5), "inv-b", 1, 4},
		{"heartbeat two hours later", "s7", day(4), "inv-b", 1, 4},
		{"heartbeat a second after that", "s8", day(3), "inv-a", 0, 5},
		{"heartbeat two hours after that", "s9", day(2), "inv-a", 0, 5},
	} {
		received := now.Add(time.Duration(i+1) * time.Second)
		switch {
		case i >= 9:
			received = received.Add(4 * time.Hour)
		case i >= 7:
			received = received.Add(2 * time.Hour)
		}
		if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "inventory_hash"},
			[][]any{{"h1", c.scanID, c.at, received, c.inv}}); err != nil {
			t.Fatal(err)
		}
		rs, err := job.Run(ctx, Incremental)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if rs.Hosts != 1 || rs.Resegmented != c.resegmented {
			t.Errorf("%s: %d hosts refreshed, %d of them from all scans; want 1 and %d", c.name, rs.Hosts, rs.Resegmented, c.resegmented)
		}
		var segs uint64
		if err := queryOne(ctx, st, "SELECT count() FROM host_segments FINAL WHERE host_id = 'h1'", nil, &segs); err != nil {
			t.Fatal(err)
		}
		if segs != c.segments {
			t.Errorf("%s: h1 has %d segments, want %d", c.name, segs, c.segments)
		}
		checkSegments(ctx, t, st, c.name)
		compareSets(ctx, t, st, c.name, "exposure_history", "exposure_history_live")
	}
}

// TestRefreshOpenEnded walks one host through heartbeats, a reboot into
// another kernel, a fix, a rollback and more heartbeats, refreshing
// incrementally after each day: exposure_history must equal its live
// definition every time, and each refresh must write exactly the
// exposure_spans rows whose exposure changed state (none for heartbeats:
// an open exposure's last_seen and exposed_scans come from the host's
// latest segment).
func TestRefreshOpenEnded(t *testing.T) {
	ctx := context.Background()
	st := sameSecondStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A1 is found in inv-a's pkga; K1 in inv-a's kernel image, which
	// exposes the host only while it runs 6.1.0-1-amd64. inv-b has neither.
	must(st.Insert(ctx, "advisories", []string{"source", "advisory_id", "record_hash", "withdrawn", "loaded_at"},
		[][]any{{"osv", "A1", "h1", uint8(0), now}, {"osv", "K1", "k1", uint8(0), now}}))
	must(st.Insert(ctx, "match_inventory_findings", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "source", "advisory_id", "record_hash", "matched_at"},
		[][]any{{"inv-a", "Debian:12", "pkga", "1.0", "amd64", "osv", "A1", "h1", now},
			{"inv-a", "Debian:12", "linux-image-6.1.0-1-amd64", "6.1.4-1", "amd64", "osv", "K1", "k1", now}}))
	must(st.Insert(ctx, "match_done_inventories", []string{"inventory_hash", "matched_at"}, [][]any{{"inv-a", now}, {"inv-b", now}}))
	must(st.Insert(ctx, "match_done_advisories", []string{"source", "advisory_id", "record_hash", "matched_at"},
		[][]any{{"osv", "A1", "h1", now}, {"osv", "K1", "k1", now}}))
	const k1, k2 = "6.1.0-1-amd64", "6.1.0-2-amd64"
	job := &Job{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	scanNo := 0
	for _, day := range []struct {
		name          string
		daysAgo       []int // one scan per entry
		inv, kernel   string
		mode          Mode
		exposures     uint64 // exposure_spans rows written
		exposedHosts  uint64
		open, history uint64 // open exposures, and rows, of exposure_history after
		owner         string
		rewritten     uint64 // hosts whose base rows (0026) were rewritten
	}{
		{"first scans", []int{20, 19}, "inv-a", k1, Incremental, 2, 1, 2, 2, "web", 1},
		{"heartbeats", []int{18, 17, 16}, "inv-a", k1, Incremental, 0, 0, 2, 2, "web", 0},
		// The base rows hold the owner: the host's are rewritten.
		{"heartbeats of a new owner", []int{16}, "inv-a", k1, Incremental, 0, 0, 2, 2, "db", 1},
		{"reboot into another kernel", []int{15}, "inv-a", k2, Incremental, 1, 1, 1, 2, "db", 1},
		{"heartbeats after the reboot", []int{14, 13}, "inv-a", k2, Incremental, 0, 0, 1, 2, "db", 0},
		{"fixed", []int{12}, "inv-b", k2, Incremental, 1, 1, 0, 2, "db", 1},
		{"heartbeats while fixed", []int{11}, "inv-b", k2, Incremental, 0, 0, 0, 2, "db", 0},
		{"rolled back", []int{10}, "inv-a", k1, Incremental, 2, 1, 2, 2, "db", 1},
		{"heartbeats after the rollback", []int{9, 8, 7}, "inv-a", k1, Incremental, 0, 0, 2, 2, "db", 0},
		{"full refresh changes nothing", nil, "", "", Full, 0, 1, 2, 2, "", 1},
	} {
		var rows [][]any
		for _, ago := range day.daysAgo {
			scanNo++
			rows = append(rows, []any{"h1", fmt.Sprintf("s%02d", scanNo), now.AddDate(0, 0, -ago).Add(time.Duration(scanNo) * time.Second), now,
				day.inv, day.kernel, day.owner})
		}
		if len(rows) > 0 {
			must(st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "inventory_hash", "kernel_running", "owner"}, rows))
		}
		rs, err := job.Run(ctx, day.mode)
		if err != nil {
			t.Fatalf("%s: %v", day.name, err)
		}
		if rs.Exposures != day.exposures || rs.ExposedHosts != day.exposedHosts {
			t.Errorf("%s: refresh wrote %d exposure rows for %d exposed hosts, want %d for %d", day.name, rs.Exposures, rs.ExposedHosts, day.exposures, day.exposedHosts)
		}
		if rs.Hosts != 1 || rs.Segments == 0 && len(rows) > 0 {
			t.Errorf("%s: refresh recomputed %d hosts' segments and wrote %d segment rows, want 1 host and at least one row", day.name, rs.Hosts, rs.Segments)
		}
		var open, total uint64
		must(queryOne(ctx, st, "SELECT countIf(exposed_now = 1), count() FROM exposure_history", nil, &open, &total))
		if open != day.open || total != day.history {
			t.Errorf("%s: exposure_history has %d open of %d rows, want %d of %d", day.name, open, total, day.open, day.history)
		}
		checkSegments(ctx, t, st, day.name)
		compareSets(ctx, t, st, day.name, "exposure_history", "exposure_history_live")
		if rs.RewrittenHosts != day.rewritten {
			t.Errorf("%s: refresh rewrote the base rows of %d hosts, want %d", day.name, rs.RewrittenHosts, day.rewritten)
		}
		// The host's owner as of this refresh, and its last scan, read
		// with the base rows; open windows end at the refresh.
		for _, p := range [][2]string{{"kpi_exposures", "kpi_exposures_live"}, {"finding_risk", "finding_risk_live"}} {
			q := fmt.Sprintf(`SELECT (SELECT count() FROM %[1]s), (SELECT count() FROM %[2]s),
    (SELECT count() FROM (SELECT * EXCEPT (window_end, window_days) FROM %[1]s EXCEPT SELECT * EXCEPT (window_end, window_days) FROM %[2]s)),
    (SELECT countIf(owner != 'db') FROM %[1]s)`, p[0], p[1])
			if p[0] == "finding_risk" {
				q = strings.ReplaceAll(q, "* EXCEPT (window_end, window_days)", "*")
			}
			var n, nLive, diff, otherOwner uint64
			must(queryOne(ctx, st, q, nil, &n, &nLive, &diff, &otherOwner))
			if n != nLive || diff != 0 || day.owner == "db" && otherOwner != 0 {
				t.Errorf("%s: %s has %d rows (%d differ from %s's %d, %d of another owner than db)", day.name, p[0], n, diff, p[1], nLive, otherOwner)
			}
		}
	}
	// A refresh that replaced host_facts and stopped before its base rows
	// and its record: the next one cannot tell what changed from the
	// facts, so it rewrites every host; the one after, none.
	must(st.Exec(ctx, "INSERT INTO host_facts SELECT * REPLACE (refresh_version + 1 AS refresh_version) FROM host_facts"))
	for i, want := range []uint64{1, 0} {
		rs, err := job.Run(ctx, Incremental)
		if err != nil {
			t.Fatal(err)
		}
		if rs.RewrittenHosts != want {
			t.Errorf("refresh %d after one that stopped midway rewrote %d hosts, want %d", i+1, rs.RewrittenHosts, want)
		}
	}
	var reopened uint64
	must(queryOne(ctx, st, "SELECT sum(reopened) FROM exposure_history", nil, &reopened))
	if reopened != 2 {
		t.Errorf("after the rollback both exposures count %d reopenings in all, want 2", reopened)
	}
}

// TestRefreshFleetBudget: the copies of the fleet-wide KPI views run
// within FleetMemory, by default the shard budget (Memory), not unbounded:
// a budget too small fails the refresh at the first of them (naming it),
// and the failed refresh leaves the tables of the previous one readable.
func TestRefreshFleetBudget(t *testing.T) {
	shard, fleet := membudget.Budget{Bytes: 1 << 30, Threads: 2}, membudget.Budget{Bytes: 2 << 30}
	if got := (&Job{Memory: shard}).fleetMemory(); got != shard {
		t.Errorf("fleet budget %+v without FleetMemory, want the shard budget %+v", got, shard)
	}
	if got := (&Job{Memory: shard, FleetMemory: fleet}).fleetMemory(); got != fleet {
		t.Errorf("fleet budget %+v with FleetMemory %+v", got, fleet)
	}
	ctx := context.Background()
	st := sameSecondStore(t)
	seedSameSecond(ctx, t, st, time.Now().UTC().Truncate(time.Second), [][4]any{{"s1", 10, "inv-a", 0}, {"s2", 5, "inv-b", 0}})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := (&Job{Store: st, Log: log}).Run(ctx, Full); err != nil {
		t.Fatal(err)
	}
	var before uint64
	if err := queryOne(ctx, st, "SELECT count() FROM kpi_mttr_snapshot", nil, &before); err != nil {
		t.Fatal(err)
	}
	// The first fleet-wide copy (the per-host ones run within Memory).
	first := ""
	for _, name := range Snapshots {
		if !perHostSnapshots[name] {
			first = name
			break
		}
	}
	_, err := (&Job{Store: st, Log: log, FleetMemory: membudget.Budget{Bytes: 1, SpillBytes: 1}}).Run(ctx, Full)
	if err == nil || !strings.Contains(err.Error(), first+"_snapshot") || !strings.Contains(err.Error(), "MEMORY_LIMIT_EXCEEDED") {
		t.Fatalf("refresh with a 1-byte fleet budget: %v; want %s_snapshot over its memory limit", err, first)
	}
	var after uint64
	if err := queryOne(ctx, st, "SELECT count() FROM kpi_mttr_snapshot", nil, &after); err != nil {
		t.Fatal(err)
	}
	if after != before || before == 0 {
		t.Errorf("kpi_mttr_snapshot has %d rows after the failed refresh, %d before (want the same, not 0)", after, before)
	}
}

// A refresh with DeferSnapshots brings exposures and the base rows
// (kpi_exposures, finding_risk) up to date, leaves every KPI snapshot table
// as it was, and is recorded with snapshots = 0; the next refresh writes
// them.
func TestRefreshDeferSnapshots(t *testing.T) {
	ctx := context.Background()
	st := sameSecondStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	seedSameSecond(ctx, t, st, now, [][4]any{{"s1", 10, "inv-a", 0}, {"s2", 5, "inv-b", 0}})
	log := slog.New(slog.DiscardHandler)
	if _, err := (&Job{Store: st, Log: log}).Run(ctx, Full); err != nil {
		t.Fatal(err)
	}
	counts := func() map[string]uint64 {
		t.Helper()
		out := map[string]uint64{}
		for _, name := range append(append([]string{}, Snapshots...), "kpi_exposures", "finding_risk") {
			q := "SELECT count() FROM " + name + "_snapshot"
			switch name {
			case "kpi_exposures":
				q = "SELECT count() FROM kpi_exposures WHERE is_open = 1"
			case "finding_risk":
				q = "SELECT count() FROM finding_risk"
			}
			var n uint64
			if err := queryOne(ctx, st, q, nil, &n); err != nil {
				t.Fatal(err)
			}
			out[name] = n
		}
		return out
	}
	// h1 ran inv-a (exposed) 10 days ago, inv-b (not exposed) from 5 days
	// ago: one resolved exposure, no open finding.
	written := counts()
	if written["kpi_mttr"] == 0 || written["kpi_exposures"] != 0 || written["finding_risk"] != 0 {
		t.Fatalf("the first refresh wrote %v", written)
	}
	// Emptied snapshot tables stay empty through a deferring refresh; a
	// scan of inv-a 2 days ago reopens the exposure in the base rows.
	for _, name := range Snapshots {
		if err := st.Exec(ctx, "TRUNCATE TABLE "+name+"_snapshot"); err != nil {
			t.Fatal(err)
		}
	}
	seedSameSecond(ctx, t, st, now, [][4]any{{"s3", 2, "inv-a", 0}})
	rst, err := (&Job{Store: st, Log: log, DeferSnapshots: true}).Run(ctx, Incremental)
	if err != nil {
		t.Fatal(err)
	}
	deferred := counts()
	for _, name := range Snapshots {
		if deferred[name] != 0 {
			t.Errorf("%s_snapshot has %d rows after a refresh that deferred the snapshots", name, deferred[name])
		}
	}
	if deferred["kpi_exposures"] != 1 || deferred["finding_risk"] != 1 {
		t.Errorf("kpi_exposures has %d open exposures and finding_risk %d findings after the rescan of inv-a, want 1 and 1",
			deferred["kpi_exposures"], deferred["finding_risk"])
	}
	var flag uint8
	if err := queryOne(ctx, st, "SELECT snapshots FROM refresh_runs WHERE refresh_id = ?", []any{rst.RefreshID}, &flag); err != nil || flag != 0 {
		t.Errorf("refresh_runs.snapshots = %d (%v) for the deferring refresh, want 0", flag, err)
	}
	rst, err = (&Job{Store: st, Log: log}).Run(ctx, Incremental)
	if err != nil {
		t.Fatal(err)
	}
	after := counts()
	for _, name := range Snapshots {
		if written[name] > 0 && after[name] == 0 {
			t.Errorf("%s_snapshot is empty after the next refresh (%d rows after the first)", name, written[name])
		}
	}
	if err := queryOne(ctx, st, "SELECT snapshots FROM refresh_runs WHERE refresh_id = ?", []any{rst.RefreshID}, &flag); err != nil || flag != 1 {
		t.Errorf("refresh_runs.snapshots = %d (%v) for a refresh that wrote them, want 1", flag, err)
	}
}

// An incremental refresh rewrites the base rows of a host whose
// exceptions in force changed: approved (its finding is accepted), then
// revoked, the last approved one of the store (accepted no more), and
// nothing when they did not change.
func TestRefreshExceptionChanges(t *testing.T) {
	ctx := context.Background()
	st := sameSecondStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	// h1 runs inv-a, exposed to A1 (package pkga), since 3 days ago.
	seedSameSecond(ctx, t, st, now, [][4]any{{"s1", 3, "inv-a", 0}})
	log := slog.New(slog.DiscardHandler)
	job := &Job{Store: st, Log: log}
	if _, err := job.Run(ctx, Full); err != nil {
		t.Fatal(err)
	}
	exception := func(version uint32, status string) {
		t.Helper()
		if err := st.Insert(ctx, "exceptions", []string{"exception_id", "version", "advisory", "scope", "host", "sel_criticality",
			"sel_internet_facing", "owner", "reason", "requester", "approver", "status", "requested_at", "decided_at", "expires_at", "updated_at"},
			[][]any{{"EX-1", version, "A1", "host", "h1", int16(-1), int8(-1), "ops", "appliance", "alice", "bob", status,
				now.Add(-time.Hour), now, now.Add(30 * 24 * time.Hour), now.Add(time.Duration(version) * time.Second)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		name      string
		change    func()
		rewritten uint64
		accepted  uint8
	}{
		{"approved", func() { exception(1, "approved") }, 1, 1},
		{"unchanged", func() {}, 0, 1},
		{"revoked", func() { exception(2, "revoked") }, 1, 0},
		{"unchanged after", func() {}, 0, 0},
	} {
		step.change()
		rs, err := job.Run(ctx, Incremental)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		var n uint64
		var accepted uint8
		if err := queryOne(ctx, st, "SELECT count(), max(accepted) FROM finding_risk WHERE host_id = 'h1' AND advisory_id = 'A1'", nil, &n, &accepted); err != nil {
			t.Fatal(err)
		}
		if rs.RewrittenHosts != step.rewritten || n != 1 || accepted != step.accepted {
			t.Errorf("%s: %d hosts rewritten, %d findings of h1/A1 with accepted %d; want %d, 1, %d",
				step.name, rs.RewrittenHosts, n, accepted, step.rewritten, step.accepted)
		}
	}
}

// TestMediansHandWorked holds kpi_time_to_patch_live and kpi_mttr_live
// (0024: medians in two passes over whole days) to figures worked out by
// hand on a few exposures written straight into the tables behind
// kpi_exposures (exposure_base, host_facts) and into their duration groups,
// and to their 0016 definitions on the same rows. A median is the element at
// 0-based rank floor(count / 2) of the sorted durations (the upper one of
// an even count): high has 5 resolved exposures (rank 2), low 4 (rank 2,
// where a lower median would take rank 1 and differ: pub 1 day, rem
// 172801 s, in the same whole day as its neighbours), critical only open
// ones (nan). Ties, several durations within one whole day, open exposures
// (accepted, stale) and ones without a fix date are among them.
func TestMediansHandWorked(t *testing.T) {
	ctx := context.Background()
	st := sameSecondStore(t)
	const day = 86400
	type exposure struct {
		sev                string
		ring               string
		open, stale, acc   uint8
		pub, fix, dis, rem int64 // seconds; fix < 0: no fix date
	}
	exposures := []exposure{
		{"high", "canary", 0, 0, 0, 2 * day, 1000, 0, 90000},
		{"high", "canary", 0, 0, 0, 2 * day, 2000, 0, 95000},
		{"high", "canary", 0, 0, 0, 3 * day, -1, 50000, 100000},
		{"high", "canary", 0, 0, 0, 3 * day, -1, day, 110000},
		{"high", "canary", 0, 0, 0, 9 * day, 5000, day, 400000},
		{"high", "canary", 1, 0, 1, 0, -1, 0, 0}, // accepted
		{"high", "canary", 1, 1, 1, 0, -1, 0, 0}, // stale, so not accepted
		{"low", "canary", 0, 0, 0, day, -1, 3600, 2 * day},
		{"low", "canary", 0, 0, 0, day, -1, 7200, 2*day + 1},
		{"low", "canary", 0, 0, 0, 5 * day, -1, 7200, 2*day + 2},
		{"low", "canary", 0, 0, 0, 5 * day, -1, 40 * day, 30 * day},
		{"critical", "prod", 1, 0, 0, 0, -1, 0, 0},
		{"critical", "prod", 1, 0, 1, 0, -1, 0, 0}, // accepted
	}
	days := func(s int64, ok bool) float64 {
		if !ok {
			return math.NaN()
		}
		return float64(s) / day
	}
	// The exposures go straight into the tables behind kpi_exposures
	// (0026): a stale host's last scan is 100 days old, and its rows say
	// it is stale, as a refresh writes them.
	var rows, hosts [][]any
	now := time.Now().UTC().Truncate(time.Second)
	for i, e := range exposures {
		closed := e.open == 0
		host := fmt.Sprintf("h%d", i)
		rows = append(rows, []any{host,
			"osv", fmt.Sprintf("A%d", i), e.sev, e.open, e.stale, e.acc,
			days(e.pub, closed), days(e.fix, closed && e.fix >= 0), days(e.dis, closed), days(e.rem, closed)})
		last := now
		if e.stale == 1 {
			last = now.Add(-100 * 24 * time.Hour)
		}
		hosts = append(hosts, []any{host, fmt.Sprintf("host-%d", i), "ops", e.ring, uint8(2), "debian 12", last, now})
	}
	if err := st.Insert(ctx, "exposure_base", []string{"host_id",
		"source", "advisory_id", "severity", "is_open", "stale", "accepted",
		"ttp_publication_days", "ttp_fix_days", "ttp_disclosure_days", "remediation_days"}, rows); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "host_facts", []string{"host_id", "hostname", "owner", "ring", "criticality", "os", "last_scan_at", "as_of"}, hosts); err != nil {
		t.Fatal(err)
	}
	// The views count the groups of these exposures (0034), as a refresh
	// writes them: equal durations of a host are one group of n.
	if err := st.Exec(ctx, "INSERT INTO duration_groups_base SELECT *, 1, 0 FROM duration_groups_live"); err != nil {
		t.Fatal(err)
	}

	nan := math.NaN()
	mean := func(n float64, secs ...int64) float64 {
		var s int64
		for _, x := range secs {
			s += x
		}
		return float64(s) / day / n
	}
	type figures struct {
		Resolved, WithFix, Accepted    uint64
		PubAvg, PubMed, FixAvg, FixMed float64
		DisAvg, DisMed, RemAvg, RemMed float64
	}
	high := figures{5, 3, 1,
		mean(5, 2*day, 2*day, 3*day, 3*day, 9*day), 3, mean(3, 1000, 2000, 5000), 2000.0 / day,
		mean(5, 0, 0, 50000, day, day), 50000.0 / day, mean(5, 90000, 95000, 100000, 110000, 400000), 100000.0 / day}
	low := figures{4, 0, 0,
		mean(4, day, day, 5*day, 5*day), 5, nan, nan,
		mean(4, 3600, 7200, 7200, 40*day), 7200.0 / day, mean(4, 2*day, 2*day+1, 2*day+2, 30*day), float64(2*day+2) / day}
	critical := figures{0, 0, 1, nan, nan, nan, nan, nan, nan, nan, nan}
	// Every resolved exposure (9, rank 4) and every open one.
	all := figures{9, 3, 2,
		mean(9, 2*day, 2*day, 3*day, 3*day, 9*day, day, day, 5*day, 5*day), 3, high.FixAvg, high.FixMed,
		mean(9, 0, 0, 50000, day, day, 3600, 7200, 7200, 40*day), 7200.0 / day,
		mean(9, 90000, 95000, 100000, 110000, 400000, 2*day, 2*day+1, 2*day+2, 30*day), float64(2*day) / day}
	want := map[[3]string]figures{
		{"all", "", "high"}: high, {"all", "", "low"}: low, {"all", "", "critical"}: critical, {"all", "", "all"}: all,
		{"ring", "canary", "all"}: {9, 3, 1, all.PubAvg, all.PubMed, all.FixAvg, all.FixMed, all.DisAvg, all.DisMed, all.RemAvg, all.RemMed},
		{"ring", "prod", "all"}:   critical,
	}

	for _, v := range []struct {
		view, cols string
		got        func(r []any) figures
	}{
		{"kpi_time_to_patch_live", "resolved, with_fix_date, accepted, from_publication_avg_days, from_publication_median_days, " +
			"from_fix_avg_days, from_fix_median_days, from_disclosure_avg_days, from_disclosure_median_days, " +
			"from_first_seen_avg_days, from_first_seen_median_days",
			func(r []any) figures {
				return figures{r[0].(uint64), r[1].(uint64), r[2].(uint64), r[3].(float64), r[4].(float64), r[5].(float64),
					r[6].(float64), r[7].(float64), r[8].(float64), r[9].(float64), r[10].(float64)}
			}},
		{"kpi_mttr_live", "resolved, accepted, mttr_days, median_days, mttr_disclosure_days, median_disclosure_days",
			func(r []any) figures {
				return figures{Resolved: r[0].(uint64), Accepted: r[1].(uint64), RemAvg: r[2].(float64), RemMed: r[3].(float64),
					DisAvg: r[4].(float64), DisMed: r[5].(float64)}
			}},
	} {
		for key, w := range want {
			if v.view == "kpi_mttr_live" {
				w = figures{Resolved: w.Resolved, Accepted: w.Accepted, RemAvg: w.RemAvg, RemMed: w.RemMed, DisAvg: w.DisAvg, DisMed: w.DisMed}
			}
			_, got := readAll(ctx, t, st, fmt.Sprintf("SELECT %s FROM %s WHERE dimension = '%s' AND dim_value = '%s' AND severity = '%s' AND exceptions = 'honoured'",
				v.cols, v.view, key[0], key[1], key[2]))
			if len(got) != 1 {
				t.Errorf("%s %v: %d rows, want 1", v.view, key, len(got))
				continue
			}
			g := v.got(got[0])
			gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
			for i := 0; i < gv.NumField(); i++ {
				if !sameValue(gv.Field(i).Interface(), wv.Field(i).Interface()) {
					t.Errorf("%s %v: %s = %v, want %v", v.view, key, gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
				}
			}
		}
	}
	previous := previousLive(t)
	checkPrevious(ctx, t, st, "hand-worked", map[string]string{
		"kpi_mttr_live": previous["kpi_mttr_live"], "kpi_time_to_patch_live": previous["kpi_time_to_patch_live"]})
}

// A refresh copies the snapshots computed from exposure_base alone
// (baseOnlySnapshots) only when their inputs changed: not after nothing
// did, yes after a rescan reopens an exposure, and yes for the one whose
// definition changed. The snapshot tables are emptied before each
// refresh, so a table left as it was is seen empty. The group tables
// (groupTables), which snapshots read, follow exposure_base host by host:
// a refresh writes only the groups that changed, none after nothing did,
// and leaves them equal to their views.
func TestRefreshSkipsUnchangedSnapshots(t *testing.T) {
	ctx := context.Background()
	st := sameSecondStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	// h1 ran inv-a (exposed to A1) 10 days ago, inv-b from 5 days ago.
	seedSameSecond(ctx, t, st, now, [][4]any{{"s1", 10, "inv-a", 0}, {"s2", 5, "inv-b", 0}})
	job := &Job{Store: st, Log: slog.New(slog.DiscardHandler)}
	if _, err := job.Run(ctx, Full); err != nil {
		t.Fatal(err)
	}
	rowsOf := func(name string) uint64 {
		t.Helper()
		var n uint64
		if err := queryOne(ctx, st, "SELECT count() FROM "+name+"_snapshot", nil, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	written := map[string]uint64{}
	for _, name := range Snapshots {
		written[name] = rowsOf(name)
	}
	baseOnly := map[string]bool{}
	for _, name := range baseOnlySnapshots {
		baseOnly[name] = true
		// No exposure has reopened yet.
		if name != "kpi_open_exposure" && written[name] == 0 {
			t.Fatalf("%s_snapshot is empty after the first refresh", name)
		}
	}
	// sameAsView: the snapshot holds the rows its view computes now (as
	// text, so that nan equals nan).
	sameAsView := func(name string) bool {
		t.Helper()
		var onlySnap, onlyLive uint64
		if err := queryOne(ctx, st, fmt.Sprintf(`SELECT
    (SELECT count() FROM (SELECT formatRowNoNewline('TSV', *) FROM %[1]s_snapshot EXCEPT SELECT formatRowNoNewline('TSV', *) FROM %[1]s_live)),
    (SELECT count() FROM (SELECT formatRowNoNewline('TSV', *) FROM %[1]s_live EXCEPT SELECT formatRowNoNewline('TSV', *) FROM %[1]s_snapshot))`, name),
			nil, &onlySnap, &onlyLive); err != nil {
			t.Fatal(err)
		}
		if onlySnap != 0 || onlyLive != 0 {
			t.Logf("%s_snapshot has %d rows not in its view, which has %d not in it", name, onlySnap, onlyLive)
		}
		return onlySnap == 0 && onlyLive == 0
	}
	// The group rows each step writes, deletions included: all of them
	// in the first refresh, then those that change. The reopened scan
	// turns the host's resolved group into an open one (exposure_groups,
	// risk_groups and duration_groups: the new group, and the old one
	// deleted) and adds its first reopened group.
	groupRows := map[string][4]uint64{"nothing new": {0, 0, 0, 0}, "exposure reopened": {2, 1, 2, 2},
		"nothing new again": {0, 0, 0, 0}, "definition changed": {0, 0, 0, 0}}
	refresh := func(step string, wantUnchanged ...string) {
		t.Helper()
		for _, name := range Snapshots {
			if err := st.Exec(ctx, "TRUNCATE TABLE "+name+"_snapshot"); err != nil {
				t.Fatal(err)
			}
		}
		rs, err := job.Run(ctx, Incremental)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !reflect.DeepEqual(rs.Unchanged, wantUnchanged) {
			t.Errorf("%s: snapshots left unchanged %v, want %v", step, rs.Unchanged, wantUnchanged)
		}
		for i, g := range groupTables {
			var n uint64
			if err := queryOne(ctx, st, "SELECT count() FROM "+g.table+" WHERE version = ?", []any{rs.version}, &n); err != nil {
				t.Fatal(err)
			}
			if n != groupRows[step][i] {
				t.Errorf("%s: the refresh wrote %d rows of %s, want %d", step, n, g.table, groupRows[step][i])
			}
			if !sameAsView(g.name) {
				t.Errorf("%s: %s_snapshot differs from its view", step, g.name)
			}
		}
		left := map[string]bool{}
		for _, name := range wantUnchanged {
			left[name] = true
		}
		for _, name := range Snapshots {
			n := rowsOf(name)
			switch {
			case left[name] && n != 0:
				t.Errorf("%s: %s_snapshot was copied (%d rows) though its inputs did not change", step, name, n)
			case !left[name] && baseOnly[name]:
				// Copied: the same rows as its view computes now.
				if n == 0 || !sameAsView(name) {
					t.Errorf("%s: %s_snapshot has %d rows and differs from its view", step, name, n)
				}
			case !left[name] && written[name] > 0 && n == 0:
				t.Errorf("%s: %s_snapshot was not copied", step, name)
			}
		}
	}
	refresh("nothing new", baseOnlySnapshots...)
	// A scan of inv-a 2 days ago reopens the exposure: exposure_base
	// changes, every snapshot is copied (kpi_open_exposure now has a row).
	seedSameSecond(ctx, t, st, now, [][4]any{{"s3", 2, "inv-a", 0}})
	refresh("exposure reopened")
	refresh("nothing new again", baseOnlySnapshots...)
	// A new definition of one of them (as a migration would make): that
	// one is copied, though exposure_base did not change.
	for _, q := range []string{
		"RENAME TABLE kpi_daily_trend_live TO kpi_daily_trend_live_before",
		"CREATE VIEW kpi_daily_trend_live AS SELECT * FROM kpi_daily_trend_live_before",
	} {
		if err := st.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	refresh("definition changed", "kpi_mttr", "kpi_time_to_patch", "kpi_open_exposure")
}
