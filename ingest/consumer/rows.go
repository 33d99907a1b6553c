package consumer

import (
	"fmt"
	"time"

	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// Column lists of the two tables of schemas/migrations/0001_inventory.sql,
// in the order rowBuilder fills them.
var (
	scanColumns = []string{
		"host_id", "scan_id", "scanned_at", "received_at", "hostname",
		"os_id", "os_version", "os_pretty", "os_ecosystem",
		"kernel_running", "kernels_installed", "inventory_hash", "heartbeat", "package_count",
		"owner", "ring", "criticality", "internet_facing", "tags", "maintenance_window",
		"warnings", "schema_version",
	}
	packageColumns = []string{
		"inventory_hash", "ecosystem", "name", "version", "arch",
		"source_name", "source_version", "match_name", "match_version", "v_key",
		"purl", "location",
	}
)

// dateTimeMin and dateTimeMax bound ClickHouse's DateTime (UInt32 seconds):
// a time outside would wrap silently on insert.
var (
	dateTimeMin = time.Unix(0, 0)
	dateTimeMax = time.Unix(1<<32-1, 0)
)

// rowBuilder turns decoded scans into table rows. It caches one version
// comparator per ecosystem; it is not safe for concurrent use.
type rowBuilder struct {
	comparators map[string]version.Comparator // nil value: ecosystem has no encoder
	key         []byte
}

func newRowBuilder() *rowBuilder {
	return &rowBuilder{comparators: map[string]version.Comparator{}}
}

// checkScan applies the rules the store needs beyond what Decode checks.
func checkScan(s *inventory.Scan) error {
	if s.ScannedAt.Before(dateTimeMin) || s.ScannedAt.After(dateTimeMax) {
		return fmt.Errorf("scanned_at %s outside ClickHouse DateTime range", s.ScannedAt.UTC().Format(time.RFC3339))
	}
	if !s.Heartbeat && s.InventoryHash == "" {
		return fmt.Errorf("full scan without inventory hash")
	}
	return nil
}

// scanRow builds the scans row of s; packageCount is the number of packages
// the message carried (s.Packages may be nil when the decoder skipped them).
func scanRow(s *inventory.Scan, packageCount int, schemaVersion uint16, receivedAt time.Time) []any {
	return []any{
		s.HostID, s.ScanID, s.ScannedAt.UTC(), receivedAt.UTC(), s.Hostname,
		s.OS.ID, s.OS.VersionID, s.OS.PrettyName, s.OS.Ecosystem,
		s.KernelRunning, nonNil(s.KernelsInstalled), s.InventoryHash, b2u(s.Heartbeat), uint32(packageCount),
		s.Meta.Owner, s.Meta.Ring, s.Meta.Criticality, b2u(s.Meta.InternetFacing), nonNil(s.Meta.Tags), s.Meta.MaintenanceWindow,
		nonNil(s.Warnings), schemaVersion,
	}
}

// packageRows appends one row per package of s to rows. A version the
// ecosystem's encoder rejects (or an ecosystem without one) gets v_key ”
// — matching ignores empty keys — and counts in badKeys; the row is kept.
func (b *rowBuilder) packageRows(rows [][]any, s *inventory.Scan) (_ [][]any, badKeys int) {
	for i := range s.Packages {
		p := &s.Packages[i]
		mv := p.MatchVersion()
		vkey, ok := b.vKey(p.Ecosystem, mv)
		if !ok {
			badKeys++
		}
		rows = append(rows, []any{
			s.InventoryHash, p.Ecosystem, p.Name, p.Version, p.Arch,
			p.SourceName, p.SourceVersion, p.MatchName(), mv, vkey,
			p.PURL, p.Location,
		})
	}
	return rows, badKeys
}

func (b *rowBuilder) vKey(ecosystem, v string) (string, bool) {
	c, seen := b.comparators[ecosystem]
	if !seen {
		var err error
		c, err = version.Lookup(ecosystem)
		if err != nil {
			c = nil
		}
		b.comparators[ecosystem] = c
	}
	if c == nil {
		return "", false
	}
	key, err := c.AppendKey(b.key[:0], v)
	if err != nil {
		return "", false
	}
	b.key = key
	return string(key), true
}

// rowOverhead approximates what a row holds beyond its strings: the row
// slice, interface boxes and fixed-size values.
const rowOverhead = 64

// scanRowBytes approximates the memory of s's scans row, for BatchBytes.
func scanRowBytes(s *inventory.Scan) int {
	n := rowOverhead + len(s.HostID) + len(s.ScanID) + len(s.Hostname) + len(s.OS.ID) + len(s.OS.VersionID) +
		len(s.OS.PrettyName) + len(s.OS.Ecosystem) + len(s.KernelRunning) + len(s.InventoryHash) +
		len(s.Meta.Owner) + len(s.Meta.Ring) + len(s.Meta.MaintenanceWindow)
	for _, l := range [][]string{s.KernelsInstalled, s.Meta.Tags, s.Warnings} {
		for _, v := range l {
			n += len(v)
		}
	}
	return n
}

// packageRowBytes approximates the memory of s's inventory_packages rows.
func packageRowBytes(s *inventory.Scan) int {
	n := 0
	for i := range s.Packages {
		p := &s.Packages[i]
		n += rowOverhead + len(s.InventoryHash) + len(p.Ecosystem) + len(p.Name) + len(p.Version) + len(p.Arch) +
			len(p.SourceName) + len(p.SourceVersion) + len(p.PURL) + len(p.Location) + 2*len(p.Version) // match_version, v_key
	}
	return n
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// nonNil keeps Array(String) columns from receiving a nil slice, which
// some drivers reject.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
