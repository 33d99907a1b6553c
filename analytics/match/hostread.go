package match

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/patchgrid/patchgrid/analytics/progress"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/store/membudget"
)

// Reading every host's current findings (what the host_findings view
// returns) without the view's fan-out in the engine. The view joins each
// host's latest scan to its inventory's findings: at 100,000 hosts that is
// 358.6M wide rows, built in memory by the engine (10.9 GB, 7 min 50 s).
// Hosts share inventories (about 200 for 100,000 hosts), so ReadHostFindings
// reads each inventory's findings once and hands them to every host that
// has that inventory: the engine returns (host, inventory) pairs sorted by
// inventory, and the findings of a few inventories at a time. What is held
// at once is one batch of inventories' findings and their hosts, whatever
// the fleet's size.

// Host is a host's latest scan, as host_findings shows it.
type Host struct {
	HostID         string
	ScanID         string
	ScannedAt      time.Time
	Hostname       string
	OSEcosystem    string
	KernelRunning  string
	Owner          string
	Ring           string
	Criticality    uint8
	InternetFacing uint8
	Tags           []string
	InventoryHash  string
}

// HostFinding is one finding of an inventory with its current advisory
// record: a row of host_findings without the host's columns. The slice a
// ReadHostFindings callback receives is shared by every host with the
// same inventory and must not be modified.
type HostFinding struct {
	Ecosystem    string
	Name         string
	Version      string
	Arch         string
	Location     string
	MatchName    string
	MatchVersion string
	Source       string
	AdvisoryID   string
	RecordHash   string
	RangeIdx     uint16
	RangeType    string
	Status       string
	Comparator   string
	Introduced   string
	Fixed        string
	LastAffected string
	FixPublished time.Time
	Aliases      []string
	CVEs         []string
	Severity     string
	CVSSScore    float32
	File         string

	kernelImage bool
}

// KernelState is host_findings.kernel_state of the finding on a host
// running kernelRunning: "" when the package is not a kernel image, else
// "unknown" (the running kernel is not known), "running" or "not_running".
func (f *HostFinding) KernelState(kernelRunning string) string {
	switch {
	case !f.kernelImage:
		return ""
	case kernelRunning == "":
		return "unknown"
	case kernelRunningName(f.Name, f.Version, f.Arch, kernelRunning):
		return "running"
	}
	return "not_running"
}

// InventoryFindings is one inventory's findings, shared by every host with
// that inventory: read once, delivered to each of its hosts.
type InventoryFindings struct {
	Hash     string
	Findings []HostFinding
	// Kernel indexes the kernel-image findings of Findings: the only ones
	// whose state (HostFinding.KernelState) differs between the hosts.
	Kernel []int
}

// ReadConfig configures ReadHostFindings. Zero values are defaults.
type ReadConfig struct {
	// Inventories is how many inventories' findings are held at once
	// (one statement reads them). Default 16: about 60,000 findings of
	// Debian hosts.
	Inventories int
	// Memory is the budget of each statement. Default membudget's.
	Memory membudget.Budget
	// Log receives progress lines (hosts/s, ETA). Default slog.Default().
	Log *slog.Logger
	// ProgressEvery is the interval of progress lines. Default
	// progress.DefaultEvery; negative: none.
	ProgressEvery time.Duration
}

// ReadStats is what one ReadHostFindings call delivered.
type ReadStats struct {
	Hosts             uint64 // hosts with a latest scan (with or without findings)
	Inventories       uint64 // distinct inventories of those scans
	InventoryFindings uint64 // finding rows read from the engine (once per inventory)
	HostFindings      uint64 // findings delivered, summed over hosts (rows of host_findings)
}

// sqlLatestHosts is the latest scan of every host (host_findings'
// latest_scans), sorted by inventory so that a host stream visits each
// inventory once. The total row count comes first for progress.
const sqlLatestHosts = `SELECT host_id,
    latest.1 AS scan_id, latest.2 AS scanned_at, latest.3 AS hostname,
    latest.4 AS os_ecosystem, latest.5 AS kernel_running, latest.6 AS owner,
    latest.7 AS ring, latest.8 AS criticality, latest.9 AS internet_facing,
    latest.10 AS tags, latest.11 AS inventory_hash
FROM (
    SELECT host_id,
        argMax((scan_id, scanned_at, hostname, os_ecosystem, kernel_running, owner,
                ring, criticality, internet_facing, tags, inventory_hash),
               (scanned_at, scan_id)) AS latest
    FROM scans
    GROUP BY host_id
)
ORDER BY inventory_hash, host_id`

const sqlCountHosts = `SELECT uniqExact(host_id) FROM scans`

// sqlInventoryFindings is host_findings' inventory_findings for the
// inventories of one batch (? is the array of their hashes; IN a subquery,
// unlike has(), lets the engine use the table's primary key, so a batch
// reads its inventories' rows only). The advisories read are only those
// the batch's findings name.
const sqlInventoryFindings = `SELECT inventory_hash, ecosystem, name, version, arch, location,
    match_name, match_version, source, advisory_id, record_hash,
    range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published,
    aliases, cves, severity, cvss_score, file
FROM (
    SELECT inventory_hash, ecosystem, name, version, arch, location,
        match_name, match_version, source, advisory_id, record_hash,
        range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published
    FROM match_inventory_findings FINAL
    WHERE inventory_hash IN (SELECT arrayJoin(?))
) AS findings
ALL INNER JOIN (
    SELECT source, advisory_id, record_hash, aliases, cves, severity, cvss_score, file
    FROM advisories FINAL
    WHERE withdrawn = 0 AND (source, advisory_id) IN (
        SELECT DISTINCT source, advisory_id FROM match_inventory_findings WHERE inventory_hash IN (SELECT arrayJoin(?)))
) AS current_advisories USING (source, advisory_id, record_hash)`

// ReadHostFindings calls fn for every host's latest scan with the findings
// of its inventory (none when it has none), hosts of one inventory one
// after the other: the rows of host_findings, each host's as its
// inventory's rows plus the host (kernel_state is HostFinding.KernelState
// of the host's running kernel). Both are valid only during the call (copy
// *h to keep it); inv is shared between the hosts of an inventory and must
// not be modified. fn's error stops the read and is returned as is.
func ReadHostFindings(ctx context.Context, s store.Store, cfg ReadConfig, fn func(h *Host, inv *InventoryFindings) error) (ReadStats, error) {
	var st ReadStats
	if cfg.Inventories <= 0 {
		cfg.Inventories = 16
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	var total uint64
	if err := queryUint(ctx, s, &total, cfg.Memory.Apply(sqlCountHosts)); err != nil {
		return st, fmt.Errorf("reading host findings: counting hosts: %w", err)
	}
	m := progress.Start(progress.Config{Log: log, Stage: "host findings", Unit: "hosts", Total: int64(total), Every: cfg.ProgressEvery})
	defer m.Stop()

	rows, err := s.Query(ctx, cfg.Memory.Apply(sqlLatestHosts))
	if err != nil {
		return st, fmt.Errorf("reading host findings: latest scans: %w", err)
	}
	defer rows.Close()
	// One batch: the hosts of up to cfg.Inventories inventories, in order.
	var (
		hosts []Host
		invs  []string
	)
	flush := func() error {
		if len(hosts) == 0 {
			return nil
		}
		err := readBatch(ctx, s, cfg, invs, hosts, &st, fn)
		m.Add(int64(len(hosts)))
		hosts, invs = hosts[:0], invs[:0]
		return err
	}
	for rows.Next() {
		var h Host
		if err := rows.Scan(&h.HostID, &h.ScanID, &h.ScannedAt, &h.Hostname, &h.OSEcosystem, &h.KernelRunning, &h.Owner,
			&h.Ring, &h.Criticality, &h.InternetFacing, &h.Tags, &h.InventoryHash); err != nil {
			return st, fmt.Errorf("reading host findings: latest scans: %w", err)
		}
		if len(invs) == 0 || invs[len(invs)-1] != h.InventoryHash {
			if len(invs) == cfg.Inventories {
				if err := flush(); err != nil {
					return st, err
				}
			}
			invs = append(invs, h.InventoryHash)
			st.Inventories++
		}
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("reading host findings: latest scans: %w", err)
	}
	return st, flush()
}

// readBatch reads the findings of invs and calls fn for each of hosts
// (sorted by inventory, every inventory in invs).
func readBatch(ctx context.Context, s store.Store, cfg ReadConfig, invs []string, hosts []Host, st *ReadStats,
	fn func(*Host, *InventoryFindings) error) error {
	byInv := make(map[string]*InventoryFindings, len(invs))
	for _, h := range invs {
		byInv[h] = &InventoryFindings{Hash: h}
	}
	rows, err := s.Query(ctx, cfg.Memory.Apply(sqlInventoryFindings), invs, invs)
	if err != nil {
		return fmt.Errorf("reading host findings: findings of %d inventories from %s: %w", len(invs), invs[0], err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			inv string
			f   HostFinding
		)
		if err := rows.Scan(&inv, &f.Ecosystem, &f.Name, &f.Version, &f.Arch, &f.Location, &f.MatchName, &f.MatchVersion,
			&f.Source, &f.AdvisoryID, &f.RecordHash, &f.RangeIdx, &f.RangeType, &f.Status, &f.Comparator,
			&f.Introduced, &f.Fixed, &f.LastAffected, &f.FixPublished, &f.Aliases, &f.CVEs, &f.Severity, &f.CVSSScore, &f.File); err != nil {
			return fmt.Errorf("reading host findings: findings of inventory %s: %w", inv, err)
		}
		f.kernelImage = isKernelImage(f.Name)
		b := byInv[inv]
		if b == nil {
			return fmt.Errorf("reading host findings: a finding of inventory %s, not one of the %d asked for", inv, len(invs))
		}
		if f.kernelImage {
			b.Kernel = append(b.Kernel, len(b.Findings))
		}
		b.Findings = append(b.Findings, f)
		st.InventoryFindings++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading host findings: findings of %d inventories from %s: %w", len(invs), invs[0], err)
	}
	for i := range hosts {
		if err := ctx.Err(); err != nil {
			return err
		}
		inv := byInv[hosts[i].InventoryHash]
		st.Hosts++
		st.HostFindings += uint64(len(inv.Findings))
		if err := fn(&hosts[i], inv); err != nil {
			return err
		}
	}
	return nil
}
