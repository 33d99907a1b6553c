package consumer

import (
	"fmt"
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
	if len(scanRow(ok, 1, time.Now())) != len(scanColumns) {
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
