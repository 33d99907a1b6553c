package consumer

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/inventory"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults with a broker", Config{Brokers: []string{"127.0.0.1:9092"}}, true},
		{"no broker", Config{}, false},
		{"empty broker", Config{Brokers: []string{""}}, false},
		{"dlq is input", Config{Brokers: []string{"b:1"}, Topic: "x", DLQTopic: "x"}, false},
		{"negative rows", Config{Brokers: []string{"b:1"}, BatchRows: -1}, false},
		{"negative flush", Config{Brokers: []string{"b:1"}, FlushInterval: -time.Second}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
	d := Config{}.withDefaults()
	if d.Topic != DefaultTopic || d.DLQTopic != DefaultTopic+".dlq" || d.GroupID != DefaultGroupID {
		t.Errorf("defaults: %q %q %q", d.Topic, d.DLQTopic, d.GroupID)
	}
}

func TestHashLRU(t *testing.T) {
	l := newHashLRU(2)
	l.Add("a")
	l.Add("b")
	if !l.Contains("a") { // a becomes most recent
		t.Fatal("a missing")
	}
	l.Add("c") // evicts b
	if l.Contains("b") || !l.Contains("a") || !l.Contains("c") || l.Len() != 2 {
		t.Fatalf("after eviction: b=%v a=%v c=%v len=%d", l.Contains("b"), l.Contains("a"), l.Contains("c"), l.Len())
	}
}

func TestPackageRowsKeepBadVersions(t *testing.T) {
	s := &inventory.Scan{InventoryHash: "h", Packages: []inventory.Package{
		{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.15-1~deb12u1", SourceName: "openssl", SourceVersion: "3.0.15-1~deb12u1"},
		{Ecosystem: "Debian:12", Name: "broken", Version: "not a version!"},
		{Ecosystem: "NoSuchEcosystem", Name: "x", Version: "1"},
	}}
	rows, bad := newRowBuilder().packageRows(nil, s)
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3 (no package is dropped)", len(rows))
	}
	vkey := func(i int) string { return rows[i][9].(string) }
	if vkey(0) == "" {
		t.Error("valid dpkg version got no key")
	}
	if vkey(2) != "" {
		t.Error("unknown ecosystem got a key")
	}
	want := 1
	if vkey(1) == "" {
		want = 2
	}
	if bad != want {
		t.Errorf("bad keys %d, want %d", bad, want)
	}
	if len(rows[0]) != len(packageColumns) {
		t.Errorf("row has %d values for %d columns", len(rows[0]), len(packageColumns))
	}
}

func TestCheckScan(t *testing.T) {
	ok := &inventory.Scan{InventoryHash: "h", ScannedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := checkScan(ok); err != nil {
		t.Error(err)
	}
	for _, at := range []time.Time{time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)} {
		s := *ok
		s.ScannedAt = at
		if checkScan(&s) == nil {
			t.Errorf("scanned_at %v accepted", at)
		}
	}
	if len(scanRow(ok, 0, 1, time.Now())) != len(scanColumns) {
		t.Error("scan row and column list differ in length")
	}
}

func BenchmarkPackageRows(b *testing.B) {
	s := &inventory.Scan{InventoryHash: "h"}
	for i := range 700 {
		s.Packages = append(s.Packages, inventory.Package{Ecosystem: "Debian:12", Name: fmt.Sprintf("p%d", i), Version: fmt.Sprintf("1.%d-2+deb12u1", i)})
	}
	rb := newRowBuilder()
	b.ReportAllocs()
	var rows [][]any
	for b.Loop() {
		rows, _ = rb.packageRows(rows[:0], s)
	}
}

func TestDrainTracker(t *testing.T) {
	type fetch struct {
		p      int
		offset int64
		want   bool
	}
	for _, tc := range []struct {
		name    string
		targets map[int]int64
		fetches []fetch
		reached bool
	}{
		{name: "not draining", targets: nil, fetches: []fetch{{0, 5, false}}},
		{name: "one partition", targets: map[int]int64{0: 3},
			fetches: []fetch{{0, 0, false}, {0, 1, false}, {0, 2, true}, {0, 3, false}}, reached: true},
		{name: "reported once, after the last partition", targets: map[int]int64{0: 2, 1: 1},
			fetches: []fetch{{0, 1, false}, {0, 1, false}, {1, 0, true}, {1, 1, false}}, reached: true},
		{name: "other partitions do not count", targets: map[int]int64{0: 2},
			fetches: []fetch{{1, 9, false}, {0, 0, false}}},
		{name: "past the target counts", targets: map[int]int64{0: 2}, fetches: []fetch{{0, 7, true}}, reached: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := maps.Clone(tc.targets)
			d := newDrainTracker(tc.targets)
			for i, f := range tc.fetches {
				if got := d.fetched(f.p, f.offset); got != f.want {
					t.Fatalf("fetch %d (%d/%d): %v, want %v", i, f.p, f.offset, got, f.want)
				}
			}
			if d.reached() != tc.reached {
				t.Fatalf("reached %v, want %v", d.reached(), tc.reached)
			}
			if !maps.Equal(orig, tc.targets) {
				t.Fatalf("targets modified: %v, was %v", tc.targets, orig)
			}
		})
	}
}

func TestHashSet(t *testing.T) {
	s := newHashSet(2)
	if s.Has("a") {
		t.Fatal("empty set has a")
	}
	if !s.Claim("a") || s.Claim("a") {
		t.Fatal("first claim must win, the second lose")
	}
	if !s.Has("a") || s.Len() != 0 {
		t.Fatal("pending a: Has must say yes, and it is not known yet")
	}
	s.Stored([]string{"a"})
	if !s.Has("a") || s.Claim("a") || s.Len() != 1 {
		t.Fatal("stored a must stay claimed")
	}
	for _, h := range []string{"b", "c"} {
		if !s.Claim(h) {
			t.Fatalf("claim %s", h)
		}
	}
	s.Stored([]string{"b", "c"})
	// The LRU holds 2: a is forgotten, which only costs a redundant insert.
	if s.Has("a") || !s.Claim("a") {
		t.Fatal("evicted a must be claimable again")
	}
}
