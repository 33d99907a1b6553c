// Package inventory defines the scan message: what a scanner observed on one
// endpoint at one time. It is the contract between scanner/ (producer) and
// ingest/ (consumer); its wire encoding is versioned (see codec.go and
// schemas/inventory/README.md).
package inventory

import "time"

// Scan is one inventory of one host. A heartbeat scan carries no packages and
// repeats the InventoryHash of the host's previous full scan: nothing changed.
type Scan struct {
	HostID    string    // stable endpoint id (machine-id, or the simulator's id)
	ScanID    string    // unique per scan; redelivery of the same scan carries the same id
	ScannedAt time.Time // when the scanner read the inventory (UTC)
	Hostname  string

	OS OS

	KernelRunning    string   // uname -r of the running kernel
	KernelsInstalled []string // kernel package versions present on disk

	Meta Meta

	// InventoryHash identifies the package list (see HashPackages). Hosts
	// with identical lists share one stored copy.
	InventoryHash string
	Heartbeat     bool
	Packages      []Package

	// Warnings lists inputs the scanner could not read (corrupt database,
	// unreadable lockfile); the scan still carries everything else.
	Warnings []string
}

// OS is the endpoint's identity from os-release.
type OS struct {
	ID         string // os-release ID: debian, ubuntu, alpine, rhel, ...
	VersionID  string // os-release VERSION_ID: 12, 22.04, 3.18.4, 9.5
	PrettyName string
	// Ecosystem is the OSV ecosystem with release that distro packages of
	// this host match against: "Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.18",
	// "Red Hat:enterprise_linux:9".
	Ecosystem string
}

// Meta is what the operator says about the endpoint.
type Meta struct {
	Owner             string
	Ring              string // test, pilot, prod
	Criticality       uint8  // 1 (low) .. 4 (critical); 0 = unknown
	InternetFacing    bool
	Tags              []string
	MaintenanceWindow string // e.g. "Sun 02:00-04:00 UTC"
}

// Package is one installed package or locked dependency.
type Package struct {
	// Ecosystem is the OSV ecosystem the package matches in, with release
	// for distro packages ("Debian:12", "Alpine:v3.18") and without for
	// language packages ("Go", "npm", "PyPI", "Maven").
	Ecosystem string
	Name      string // binary package / module name as installed
	Version   string // full installed version (dpkg/rpm with epoch when present)
	Arch      string
	// SourceName and SourceVersion are what distro advisories are keyed by:
	// dpkg Source (and its version), apk origin, rpm source RPM name. Empty
	// when the format has no such notion; matching then uses Name/Version.
	SourceName    string
	SourceVersion string
	PURL          string
	Location      string // the file this package was read from
}

// MatchName is the name advisories for this package are keyed by.
func (p *Package) MatchName() string {
	if p.SourceName != "" {
		return p.SourceName
	}
	return p.Name
}

// MatchVersion is the version advisories for this package are compared with.
func (p *Package) MatchVersion() string {
	if p.SourceVersion != "" {
		return p.SourceVersion
	}
	return p.Version
}
