package simulate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/inventory"
)

func TestReadUpgrades(t *testing.T) {
	_, ups := loadInputs(t)
	if len(ups) != 136 {
		t.Fatalf("got %d upgrade paths, want 136", len(ups))
	}
	if ups[0] != (simulate.Upgrade{Package: "appstream", Fixed: "0.16.1-2+b1", Vulnerable: "0.16.1-2"}) {
		t.Errorf("first upgrade = %+v", ups[0])
	}
	for _, bad := range []string{"package\tcandidate_version\tinstalled_version\nx\ty\n", "a\t\tb\n"} {
		if _, err := simulate.ReadUpgrades(strings.NewReader(bad), "bad.tsv"); err == nil {
			t.Errorf("ReadUpgrades(%q) succeeded", bad)
		}
	}
}

type recordingSink struct{ msgs []simulate.Message }

func (s *recordingSink) Send(_ context.Context, batch []simulate.Message) error {
	for _, m := range batch {
		s.msgs = append(s.msgs, simulate.Message{Key: bytes.Clone(m.Key), Value: bytes.Clone(m.Value)})
	}
	return nil
}

func streamHash(t *testing.T, cfg simulate.Config, bases []simulate.Base, ups []simulate.Upgrade) [32]byte {
	t.Helper()
	f, err := simulate.NewFleet(cfg, bases, ups)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.Run(context.Background(), simulate.WriterSink{W: &buf}, simulate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(buf.Bytes())
}

func TestSameSeedSameStream(t *testing.T) {
	bases, ups := loadInputs(t)
	cfg := simulate.Config{Endpoints: 60, Days: 20, ScansPerDay: 2, Seed: 7, DriftRate: 0.02}
	a := streamHash(t, cfg, bases, ups)
	b := streamHash(t, cfg, bases, ups)
	if a != b {
		t.Fatal("same seed gave different streams")
	}
	cfg.Seed = 8
	if streamHash(t, cfg, bases, ups) == a {
		t.Fatal("different seeds gave the same stream")
	}
}

// TestTimeline checks the stream against the fleet's ground truth and the
// rollout model: message counts, full scans only on change, heartbeats
// repeating the last hash, rings deploying in order, regressions present.
func TestTimeline(t *testing.T) {
	bases, ups := loadInputs(t)
	cfg := simulate.Config{Endpoints: 300, Days: 30, ScansPerDay: 2, Seed: 42, FailureRate: 0.3, RollbackShare: 0.5, DriftRate: 0.01}
	f, err := simulate.NewFleet(cfg, bases, ups)
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{}
	sum, err := f.Run(context.Background(), sink, simulate.RunOptions{BatchSize: 97})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(300 * 30 * 2); sum.Messages != want || int64(len(sink.msgs)) != want {
		t.Fatalf("messages: summary %d, sink %d, want %d", sum.Messages, len(sink.msgs), want)
	}
	if sum.FullScans+sum.Heartbeats != sum.Messages {
		t.Fatalf("full %d + heartbeats %d != %d", sum.FullScans, sum.Heartbeats, sum.Messages)
	}
	index := map[string]int{}
	for i, e := range f.Endpoints {
		index[e.HostID] = i
	}
	lastHash := map[string]string{}
	hashes := map[string]bool{}
	for n, m := range sink.msgs {
		s, err := inventory.Decode(m.Value)
		if err != nil {
			t.Fatalf("message %d: %v", n, err)
		}
		if string(m.Key) != s.HostID {
			t.Fatalf("message %d keyed %q, host %q", n, m.Key, s.HostID)
		}
		i := index[s.HostID]
		day := f.Day(s.ScannedAt)
		want := f.HashOn(i, day)
		if s.InventoryHash != want {
			t.Fatalf("message %d: host %d day %d hash %s, ground truth %s", n, i, day, s.InventoryHash, want)
		}
		if s.Heartbeat != (lastHash[s.HostID] == want) {
			t.Fatalf("message %d: heartbeat=%v, but hash changed=%v", n, s.Heartbeat, lastHash[s.HostID] != want)
		}
		lastHash[s.HostID] = want
		hashes[want] = true
	}
	if sum.PackageSets != len(hashes) {
		t.Errorf("summary says %d package sets, stream has %d", sum.PackageSets, len(hashes))
	}

	// Rollout: mean day a ring first has the fixed version of a package the
	// first wave touches, and regressions (fixed, then vulnerable again).
	var probe simulate.Upgrade
	for _, u := range ups {
		if d, _ := f.VersionOn(0, 0, u.Package); d == u.Vulnerable {
			probe = u
			break
		}
	}
	if probe.Package == "" {
		t.Fatal("host 0 has no upgradable package")
	}
	firstFixed := map[string][]int{}
	regressions := 0
	for i, e := range f.Endpoints {
		fixedDay, wasFixed := -1, false
		for d := 0; d < cfg.Days; d++ {
			v, ok := f.VersionOn(i, d, probe.Package)
			if !ok {
				break // drifted away
			}
			if v == probe.Fixed {
				if fixedDay < 0 {
					fixedDay = d
				}
				wasFixed = true
			} else if wasFixed {
				regressions++
				wasFixed = false
			}
		}
		if fixedDay >= 0 {
			firstFixed[e.Meta.Ring] = append(firstFixed[e.Meta.Ring], fixedDay)
		}
	}
	mean := func(ds []int) float64 {
		s := 0
		for _, d := range ds {
			s += d
		}
		return float64(s) / float64(len(ds))
	}
	test, pilot, prod := mean(firstFixed["test"]), mean(firstFixed["pilot"]), mean(firstFixed["prod"])
	t.Logf("%s: mean first-fixed day test %.1f pilot %.1f prod %.1f; regressions %d", probe.Package, test, pilot, prod, regressions)
	if !(test < pilot && pilot < prod) {
		t.Errorf("rings did not deploy in order: test %.1f pilot %.1f prod %.1f", test, pilot, prod)
	}
	if regressions == 0 {
		t.Error("no rollback regressions with a 30% failure rate")
	}
}

// TestLargeFleet builds a 100k-endpoint, 30-day fleet (every timeline
// decided) and publishes one day of 2000 of them; encoding full scans is
// what costs (see BenchmarkFullScanStream).
func TestLargeFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	bases, ups := loadInputs(t)
	begin := time.Now()
	f, err := simulate.NewFleet(simulate.Config{Endpoints: 100000, Days: 30, Seed: 1}, bases, ups)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("100k endpoints x 30 days decided in %v", time.Since(begin))
	if len(f.Endpoints) != 100000 {
		t.Fatalf("%d endpoints", len(f.Endpoints))
	}
	small, err := simulate.NewFleet(simulate.Config{Endpoints: 2000, Days: 1, Seed: 1}, bases, ups)
	if err != nil {
		t.Fatal(err)
	}
	begin = time.Now()
	sum, err := small.Run(context.Background(), simulate.WriterSink{W: io.Discard}, simulate.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2000 full scans (%d MB) encoded in %v", sum.Bytes>>20, time.Since(begin))
	if sum.Messages != 2000 || sum.FullScans != 2000 {
		t.Fatalf("messages %d full %d", sum.Messages, sum.FullScans)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  simulate.Config
		ok   bool
	}{
		{"defaults", simulate.Config{}, true},
		{"negative endpoints", simulate.Config{Endpoints: -1}, false},
		{"too many waves", simulate.Config{Waves: 65}, false},
		{"rate over 1", simulate.Config{FailureRate: 1.5}, false},
		{"start not midnight", simulate.Config{Start: time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

func BenchmarkFullScanStream(b *testing.B) {
	bases, ups := loadInputs(b)
	f, err := simulate.NewFleet(simulate.Config{Endpoints: 200, Days: 1, Seed: 1}, bases, ups)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Run(context.Background(), simulate.WriterSink{W: io.Discard}, simulate.RunOptions{ProgressInterval: -1}); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzReadUpgrades(f *testing.F) {
	f.Add("package\tcandidate_version\tinstalled_version\nappstream\t0.16.1-2+b1\t0.16.1-2\n")
	f.Add("a\tb\n")
	f.Add("# comment\n\n x \t y \t z \n")
	f.Fuzz(func(t *testing.T, in string) {
		ups, err := simulate.ReadUpgrades(strings.NewReader(in), "fuzz.tsv")
		if err != nil {
			return
		}
		for _, u := range ups {
			if u.Package == "" || u.Fixed == "" || u.Vulnerable == "" {
				t.Fatalf("accepted an incomplete upgrade %+v", u)
			}
		}
	})
}
