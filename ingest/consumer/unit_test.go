package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/kafkaconn"
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
		{"small batches get an eager size", Config{Brokers: []string{"b:1"}, BatchRows: 3}, true},
		{"eager rows over batch rows", Config{Brokers: []string{"b:1"}, BatchRows: 10, EagerRows: 11}, false},
		{"negative decode workers", Config{Brokers: []string{"b:1"}, DecodeWorkers: -1}, false},
		{"negative unclassified attempts", Config{Brokers: []string{"b:1"}, UnclassifiedAttempts: -1}, false},
		{"SASL PLAIN without TLS", Config{Brokers: []string{"b:1"}, Kafka: kafkaconn.Config{SASL: kafkaconn.SASL{Mechanism: "PLAIN", Username: "u", Password: "p"}}}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
	d := Config{}.withDefaults()
	if d.Topic != DefaultTopic || d.DLQTopic != DefaultTopic+".dlq" || d.GroupID != DefaultGroupID {
		t.Errorf("defaults: %q %q %q", d.Topic, d.DLQTopic, d.GroupID)
	}
	if d.MaxWait != 250*time.Millisecond || (Config{Drain: true}).withDefaults().MaxWait != 50*time.Millisecond {
		t.Errorf("default MaxWait %v, in drain mode %v", d.MaxWait, (Config{Drain: true}).withDefaults().MaxWait)
	}
	if d.EagerRows != d.BatchRows/4 || d.DecodeWorkers < 1 {
		t.Errorf("defaults: eager rows %d of %d, decode workers %d", d.EagerRows, d.BatchRows, d.DecodeWorkers)
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

// TestDecodeJobsReadsBothVersions: during a rolling upgrade the topic holds
// v1 and v2 messages; both must give the same rows, the schema_version
// column telling them apart, and a known set is skipped in both.
func TestDecodeJobsReadsBothVersions(t *testing.T) {
	s := &inventory.Scan{HostID: "h1", ScanID: "s1", ScannedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		OS:       inventory.OS{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"},
		Packages: []inventory.Package{{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.15-1~deb12u1", Arch: "amd64"}}}
	s.InventoryHash = inventory.HashPackages(s.Packages)
	c := &consumer{hashes: newHashSet(10)}
	now := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)
	run := func(version uint8) *job {
		t.Helper()
		e := inventory.Encoder{Version: version}
		v, err := e.Append(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		in := make(chan *job, 1)
		j := &job{m: kafka.Message{Value: v}, done: make(chan struct{})}
		in <- j
		close(in)
		c.decodeJobs(in)
		<-j.done
		if j.err != nil {
			t.Fatalf("v%d: %v", version, j.err)
		}
		return j
	}
	for _, known := range []bool{false, true} {
		if known {
			c.hashes.Stored([]string{s.InventoryHash})
		}
		j1, j2 := run(1), run(2)
		r1, r2 := scanRow(j1.res.Scan, j1.res.PackageCount, uint16(j1.res.Version), now), scanRow(j2.res.Scan, j2.res.PackageCount, uint16(j2.res.Version), now)
		last := len(scanColumns) - 1 // schema_version
		if fmt.Sprint(r1[:last]) != fmt.Sprint(r2[:last]) || r1[last] != uint16(1) || r2[last] != uint16(2) {
			t.Fatalf("known=%v: rows differ:\nv1 %v\nv2 %v", known, r1, r2)
		}
		if j1.res.PackagesSkipped != known || j2.res.PackagesSkipped != known {
			t.Fatalf("known=%v: skipped v1 %v v2 %v", known, j1.res.PackagesSkipped, j2.res.PackagesSkipped)
		}
		if !known && (len(j1.pkgRows) != 1 || fmt.Sprint(j1.pkgRows) != fmt.Sprint(j2.pkgRows)) {
			t.Fatalf("package rows differ:\nv1 %v\nv2 %v", j1.pkgRows, j2.pkgRows)
		}
	}
}

func TestRowBytes(t *testing.T) {
	hb := &inventory.Scan{HostID: "host", ScanID: "scan", InventoryHash: "h", Heartbeat: true, Meta: inventory.Meta{Tags: []string{"ab"}}}
	if got, want := scanRowBytes(hb), rowOverhead+4+4+1+2; got != want {
		t.Errorf("scanRowBytes = %d, want %d", got, want)
	}
	full := &inventory.Scan{InventoryHash: "hh", Packages: []inventory.Package{
		{Ecosystem: "e", Name: "nn", Version: "vvv"},
		{Ecosystem: "e", Name: "n", Version: "v", PURL: "pppp"},
	}}
	// Per package: overhead, hash, fields, and version twice more (match_version, v_key).
	if got, want := packageRowBytes(full), 2*rowOverhead+2*2+(1+2+3+6)+(1+1+1+4+2); got != want {
		t.Errorf("packageRowBytes = %d, want %d", got, want)
	}
}

// BenchmarkDecodeJob is a decoder's work per message: decode, check, and
// the package rows unless the set is known (then the v2 package section is
// not even decompressed).
func BenchmarkDecodeJob(b *testing.B) {
	s := &inventory.Scan{HostID: "0a1b2c3d4e5f60718293a4b5c6d7e8f9", ScanID: "scan-1", ScannedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Hostname: "web-01", OS: inventory.OS{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"}}
	for i := range 700 {
		s.Packages = append(s.Packages, inventory.Package{Ecosystem: "Debian:12", Name: fmt.Sprintf("p%d", i),
			Version: fmt.Sprintf("1.%d-2+deb12u1", i), Arch: "amd64", Location: "/var/lib/dpkg/status"})
	}
	msg, err := inventory.Encode(s)
	if err != nil {
		b.Fatal(err)
	}
	for _, known := range []bool{false, true} {
		b.Run(fmt.Sprintf("known=%v", known), func(b *testing.B) {
			c := &consumer{hashes: newHashSet(10)}
			if known {
				c.hashes.Stored([]string{inventory.HashPackages(s.Packages)})
			}
			in := make(chan *job, 1)
			done := make(chan struct{})
			go func() { c.decodeJobs(in); close(done) }()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				j := &job{m: kafka.Message{Value: msg}, done: make(chan struct{})}
				in <- j
				<-j.done
				if j.err != nil {
					b.Fatal(j.err)
				}
			}
			close(in)
			<-done
		})
	}
}

// TestDrainTargetsAwait: the loop goes on with the targets read (nil when
// not draining, an empty map for an empty topic), stops with the error of
// a failed read, and stops quietly when its context ends first.
func TestDrainTargetsAwait(t *testing.T) {
	read := func(hwm map[int]int64, err error) *drainTargets {
		d := &drainTargets{cancel: func() {}, done: make(chan struct{}), hwm: hwm, err: err}
		close(d.done)
		return d
	}
	failed := errors.New("offsets of topic t: broker down")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		targets *drainTargets
		ctx     context.Context
		want    map[int]int64
		stop    bool
		wantErr error
	}{
		{name: "not draining", ctx: context.Background()},
		{name: "empty topic", targets: read(map[int]int64{}, nil), ctx: context.Background(), want: map[int]int64{}},
		{name: "targets", targets: read(map[int]int64{0: 3}, nil), ctx: context.Background(), want: map[int]int64{0: 3}},
		{name: "read failed", targets: read(nil, failed), ctx: context.Background(), stop: true, wantErr: failed},
		{name: "cancelled while reading", targets: &drainTargets{cancel: func() {}, done: make(chan struct{})}, ctx: cancelled, stop: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hwm, stop, err := tc.targets.await(tc.ctx, slog.New(slog.DiscardHandler))
			if stop != tc.stop || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("stop %v, err %v; want %v, %v", stop, err, tc.stop, tc.wantErr)
			}
			if (hwm == nil) != (tc.want == nil) || !maps.Equal(hwm, tc.want) {
				t.Errorf("targets %v, want %v", hwm, tc.want)
			}
		})
	}
}
