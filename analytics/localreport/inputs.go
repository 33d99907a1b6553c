package localreport

import (
	"context"
	"fmt"

	"github.com/patchgrid/patchgrid/scanner/inventory"
	schema "github.com/patchgrid/patchgrid/schemas/inventory"
)

// Files are inventory files read instead of a live root: what an operator
// copied off a host (or an image) to check it here.
type Files struct {
	DpkgStatus   []string // /var/lib/dpkg/status copies
	APKInstalled []string // /lib/apk/db/installed copies
	RPMManifest  []string // Red Hat container-catalog rpm-manifest JSON
}

// Empty reports whether no file is given.
func (f Files) Empty() bool {
	return len(f.DpkgStatus)+len(f.APKInstalled)+len(f.RPMManifest) == 0
}

// FromFiles reads the inventory files with the scanner's file reader
// (inventory.ReadFileWith: format detection, and the release from osFlag,
// an os-release beside the file or the packages themselves). Each file must
// be of the format its flag names. A release that stays unknown is an
// error asking for --os: distro packages could not match any advisory and
// the report would be silently empty. A file that cannot be read fails the
// whole call: a report over part of the inventory would look like a clean
// bill of health for the rest.
func FromFiles(ctx context.Context, f Files, osFlag string) ([]schema.Package, schema.OS, []string, error) {
	if f.Empty() {
		return nil, schema.OS{}, nil, fmt.Errorf("no inventory file given")
	}
	var (
		pkgs []schema.Package
		warn []string
		rel  schema.OS
		from string
	)
	for _, j := range []struct {
		flag, format string
		files        []string
	}{
		{"--dpkg-status", inventory.FormatDpkgStatus, f.DpkgStatus},
		{"--apk-installed", inventory.FormatAPKDB, f.APKInstalled},
		{"--rpm-manifest", inventory.FormatRPMManifest, f.RPMManifest},
	} {
		for _, file := range j.files {
			got, err := inventory.ReadFileWith(ctx, file, inventory.ReadOptions{OS: osFlag})
			if err != nil {
				return nil, schema.OS{}, nil, fmt.Errorf("%s %s: %w", j.flag, file, err)
			}
			if got.Format != j.format {
				return nil, schema.OS{}, nil, fmt.Errorf("%s %s: the file is %s, not %s", j.flag, file, got.Format, j.format)
			}
			if got.OS.Ecosystem == "" {
				return nil, schema.OS{}, nil, fmt.Errorf("%s %s: the file does not say which release it comes from: give --os (e.g. Debian:12, Alpine:v3.18, rhel:9)", j.flag, file)
			}
			switch {
			case from == "":
				rel, from = got.OS, file
			case got.OS.Ecosystem != rel.Ecosystem:
				return nil, schema.OS{}, nil, fmt.Errorf("%s %s is %s but %s is %s: one report covers one host", j.flag, file, got.OS.Ecosystem, from, rel.Ecosystem)
			}
			pkgs = append(pkgs, got.Packages...)
			warn = append(warn, got.Warnings...)
		}
	}
	return pkgs, rel, warn, nil
}
