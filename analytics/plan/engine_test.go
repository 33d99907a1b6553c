package plan

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// hostWindows are the windows hosts declare (scanner/simulate's, one
// unreadable).
var hostWindows = []string{"", "", "Sun 02:00-04:00 UTC", "Sat 22:00-02:00 UTC", "Wed 01:00-03:00 UTC", "daily 03:00-04:00 UTC", "whenever"}

// genFleet makes the open findings of a random fleet and the windows its
// hosts declare.
func genFleet(rng *rand.Rand) ([]*Finding, map[string]string) {
	var fs []*Finding
	wins := map[string]string{}
	versions := []string{"1.0-1", "1.0-2", "1.1-1", "1:0.9-1", "1.0-1+deb12u1", "1.0~rc1-1", "2.0-1", "1.1-01"}
	rings := []string{"test", "pilot", "prod", "lab", ""}
	owners := []string{"web", "data"}
	nHosts := 5 + rng.IntN(60)
	seen := map[[4]string]bool{}
	for h := range nHosts {
		id := fmt.Sprintf("h%03d", h)
		ring := rings[rng.IntN(len(rings))]
		inet := rng.IntN(4) == 0
		wins[id] = hostWindows[rng.IntN(len(hostWindows))]
		for range 1 + rng.IntN(6) {
			fixed := versions[rng.IntN(len(versions))]
			if rng.IntN(40) == 0 {
				fixed = "not a version!"
			}
			f := finding(id, ring, fmt.Sprintf("pkg%d", rng.IntN(5)), fmt.Sprintf("0.%d-1", rng.IntN(2)),
				fixed, fmt.Sprintf("A%d", rng.IntN(12)),
				[]string{"critical", "high", "medium", "low", "unknown"}[rng.IntN(5)], float64(rng.IntN(10000))/100)
			f.Owner, f.OS = owners[h%2], "Debian:12"
			f.InternetFacing = inet
			f.KEV = rng.IntN(10) == 0
			if f.KEV {
				f.KEVDueDate = at.Truncate(24*time.Hour).AddDate(0, 0, rng.IntN(20)-5)
			}
			f.HasEPSS = rng.IntN(3) > 0
			if f.HasEPSS {
				f.EPSS = float64(rng.IntN(1000)) / 1000
			}
			f.ClockStart = at.Add(-time.Duration(rng.IntN(40*24)) * time.Hour)
			if rng.IntN(6) == 0 {
				f.Status, f.FixedVersion = "unfixed", ""
			}
			// finding_risk has one row per (host, advisory, package,
			// installed version): a repeat is not a finding of its own.
			k := [4]string{f.HostID, f.AdvisoryID, f.Package, f.Installed}
			if seen[k] {
				continue
			}
			seen[k] = true
			fs = append(fs, f)
		}
	}
	return fs, wins
}

// seedFindings replaces the store's open findings (the tables behind
// finding_risk, 0026) and scans with fs and the hosts' windows. A
// finding's risk_score is made fs's: finding_risk adds the parts that move
// with the host and the clock to the stored risk_cvss when read, so the
// findings are written twice, the second time with risk_cvss less those
// parts as the first read them.
func seedFindings(t *testing.T, st store.Store, fs []*Finding, wins map[string]string) {
	t.Helper()
	ctx := context.Background()
	for _, tbl := range []string{"finding_risk_base", "host_facts", "scans"} {
		if err := st.Exec(ctx, "TRUNCATE TABLE "+tbl); err != nil {
			t.Fatal(err)
		}
	}
	b8 := func(b bool) uint8 {
		if b {
			return 1
		}
		return 0
	}
	now := time.Now().UTC().Truncate(time.Second)
	hosts := map[string]bool{}
	var hostRows [][]any
	for _, f := range fs {
		if !hosts[f.HostID] {
			hosts[f.HostID] = true
			hostRows = append(hostRows, []any{f.HostID, f.Hostname, f.Owner, f.Ring, f.OS, uint8(f.Criticality), b8(f.InternetFacing), now, now})
		}
	}
	if err := st.Insert(ctx, "host_facts", []string{"host_id", "hostname", "owner", "ring", "os", "criticality", "internet_facing",
		"last_scan_at", "as_of"}, hostRows); err != nil {
		t.Fatal(err)
	}
	key := func(host, adv, pkg, installed string) string {
		return host + "\x00" + adv + "\x00" + pkg + "\x00" + installed
	}
	rest := map[string]float64{}
	write := func(version uint64) {
		var rows [][]any
		for _, f := range fs {
			due := time.Unix(0, 0).UTC()
			if !f.KEVDueDate.IsZero() {
				due = f.KEVDueDate
			}
			// The first version has the fix the finding has not and the
			// other way round: the plan reads the latest one only, also
			// where it looks for findings without a fix (noFix) and fixed
			// versions to key among every stored row.
			status, fixed := f.Status, f.FixedVersion
			if version == 1 {
				if status == "affected" && fixed != "" {
					fixed = ""
				} else {
					status, fixed = "affected", "99:99.99-replaced"
				}
			}
			rows = append(rows, []any{f.HostID,
				f.Source, f.AdvisoryID, f.Severity, f.EPSS, b8(f.HasEPSS), b8(f.KEV), due,
				f.Ecosystem, f.Package, f.Installed, status, fixed, f.ClockStart,
				f.RiskScore - rest[key(f.HostID, f.AdvisoryID, f.Package, f.Installed)],
				rowKey(f), version})
		}
		if err := st.Insert(ctx, "finding_risk_base", []string{"host_id",
			"source", "advisory_id", "severity", "epss", "has_epss", "kev", "kev_due_date",
			"ecosystem", "package", "installed_version", "status", "fixed_version", "clock_start", "risk_cvss", "row_key", "version"}, rows); err != nil {
			t.Fatal(err)
		}
	}
	write(1)
	rows, err := st.Query(ctx, "SELECT host_id, advisory_id, package, installed_version, risk_score - risk_cvss FROM finding_risk")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var host, adv, pkg, installed string
		var r float64
		if err := rows.Scan(&host, &adv, &pkg, &installed, &r); err != nil {
			t.Fatal(err)
		}
		rest[key(host, adv, pkg, installed)] = r
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if n != len(fs) {
		t.Fatalf("finding_risk reads %d of the %d findings written", n, len(fs))
	}
	write(2)
	var scans [][]any
	for id, w := range wins {
		// An older scan with another window: the latest one counts.
		scans = append(scans, []any{id, id + "-s1", at.Add(-48 * time.Hour), "Mon 00:00-00:30 UTC"}, []any{id, id + "-s2", at.Add(-time.Hour), w})
	}
	if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "maintenance_window"}, scans); err != nil {
		t.Fatal(err)
	}
}

// rowKey is a finding's identity within its host as finding_risk_base's
// row_key (any 64-bit hash: the base only needs distinct keys).
func rowKey(f *Finding) uint64 {
	h := fnv.New64a()
	h.Write([]byte(f.AdvisoryID + "\x00" + f.Package + "\x00" + f.Installed))
	return h.Sum64()
}

// readActions reads plan id's actions as the Builder's Plan holds them.
func readActions(t *testing.T, st store.Store, id string) []Action {
	t.Helper()
	rows, err := st.Query(context.Background(), "SELECT "+strings.Join(ActionColumns, ", ")+" FROM plan_actions WHERE plan_id = ? ORDER BY rank", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var a Action
		var em, appr uint8
		if err := rows.Scan(&a.PlanID, &a.ActionID, &a.Rank, &a.HostID, &a.Hostname, &a.Owner, &a.OS, &a.Group,
			&a.Ecosystem, &a.Package, &a.InstalledVersion, &a.TargetVersion, &a.Advisories, &a.KEVAdvisories, &a.KEVIDs, &a.RiskReduction,
			&a.Deadline, &a.Ring, &a.Wave, &a.WindowStart, &a.WindowEnd, &em, &appr, &a.Status, &a.Reason, &a.Severity); err != nil {
			t.Fatal(err)
		}
		a.Emergency, a.ApprovalRequired = em != 0, appr != 0
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// comparable strips what differs by construction (plan id and what
// depends on it) and normalises times and empty lists.
func comparable(a Action) string {
	z := func(t time.Time) string {
		if t.IsZero() || t.Unix() == 0 {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%d %s %s %s %s %s %s/%s %s->%s %v kev=%d %v %s %.2f %s ring=%s wave=%d %s..%s em=%v appr=%v %s | %s",
		a.Rank, a.HostID, a.Hostname, a.Owner, a.OS, a.Group, a.Ecosystem, a.Package, a.InstalledVersion, a.TargetVersion,
		a.Advisories, a.KEVAdvisories, append([]string{}, a.KEVIDs...), a.Severity, a.RiskReduction, z(a.Deadline), a.Ring, a.Wave,
		z(a.WindowStart), z(a.WindowEnd), a.Emergency, a.ApprovalRequired, a.Status, a.Reason)
}

// The engine's plan equals the Builder's on generated fleets (with host
// windows, incomparable versions, KEV, EPSS and freezes), and has the
// plan's properties.
func TestEngineMatchesBuilder(t *testing.T) {
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	pol := parse(t, string(policy.SampleYAML))
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 11))
		fs, wins := genFleet(rng)
		horizon := time.Duration(1+rng.IntN(60)) * 24 * time.Hour
		seedFindings(t, st, fs, wins)

		b := NewBuilder(pol, at, horizon)
		for _, f := range fs {
			b.Add(f)
		}
		for id, h := range b.hosts {
			h.setWindow(wins[id])
		}
		want := b.Build("PL-go", 1)

		s, err := Create(ctx, st, CreateOptions{At: at, Horizon: horizon, Actor: "test", Policy: pol, PolicyVersion: 1})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		got := readActions(t, st, s.ID)
		if len(got) != len(want.Actions) || s.Actions != uint64(len(want.Actions)) || s.Waves != want.Waves ||
			s.Findings != want.Findings || s.Hosts != uint64(want.Hosts) || s.NoFix != uint64(len(want.NoFix)) {
			t.Fatalf("seed %d: engine %d actions (%+v), Builder %d actions, %d waves, %d findings, %d hosts, %d no-fix",
				seed, len(got), s, len(want.Actions), want.Waves, want.Findings, want.Hosts, len(want.NoFix))
		}
		for i := range got {
			if g, w := comparable(got[i]), comparable(want.Actions[i]); g != w {
				t.Errorf("seed %d action %d:\nengine  %s\nBuilder %s", seed, i, g, w)
			}
		}
		sched, late, unsched, emerg, _ := want.Counts()
		if s.Scheduled != uint64(sched) || s.Late != uint64(late) || s.Unscheduled != uint64(unsched) || s.Emergency != uint64(emerg) {
			t.Errorf("seed %d: counts %+v, want %d/%d/%d/%d", seed, s, sched, late, unsched, emerg)
		}
		// The working rows are gone.
		for _, tbl := range []string{"plan_stage_actions", "plan_stage_ranks", "plan_version_keys"} {
			rows, err := st.Query(ctx, "SELECT count() FROM "+tbl+" WHERE plan_id = ?", s.ID)
			if err != nil {
				t.Fatal(err)
			}
			var n uint64
			if !rows.Next() || rows.Scan(&n) != nil || n != 0 {
				t.Errorf("%s keeps %d rows of plan %s", tbl, n, s.ID)
			}
			rows.Close()
		}
		got[0].PlanID = s.ID
		p := &Plan{Actions: got, NoFix: want.NoFix}
		checkProperties(t, pol, fs, p, b.hosts)
		if t.Failed() {
			return
		}
	}
}

// Hand-worked on chDB: the host-window rule (TestHostWindowWithinGroupWindows's
// cases), with the windows read from the hosts' latest scans.
func TestHostWindowRuleOnCHDB(t *testing.T) {
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	pol := parse(t, hostWindowPolicy)
	fs, wins := hostWindowFindings()
	// Beside them, an end-of-life host (its finding as
	// eol_inventory_findings makes it) and a package with no fix: no
	// action for either, counted apart.
	eol := finding("old", "prod", "Debian:10", "", "", "EOL-debian-10", "high", 40)
	eol.Ecosystem, eol.Status = "Debian:10", "end_of_life"
	unfixed := finding("old", "prod", "zlib", "1", "", "B", "low", 1)
	unfixed.Status = "unfixed"
	seedFindings(t, st, append(fs, eol, unfixed), wins)
	s, err := Create(ctx, st, CreateOptions{At: at, Horizon: DefaultHorizon, Actor: "test", Policy: pol, PolicyVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkHostWindowCases(t, readActions(t, st, s.ID))
	stored, err := Get(ctx, st, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []Summary{s, stored} {
		if x.Actions != uint64(len(hostWindowCases)) || x.NoFix != 1 || x.EndOfLife != 1 || x.EndOfLifeHosts != 1 ||
			x.Findings != uint64(len(hostWindowCases)+2) {
			t.Errorf("summary %+v: want %d actions, 1 no fix, 1 end-of-life finding on 1 host", x, len(hostWindowCases))
		}
	}
}
