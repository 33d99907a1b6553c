// Package extract is the interface every inventory format implements, in the
// style of osv-scalibr: one small package per format, each saying which files
// it wants and turning one file into packages plus warnings.
package extract

import (
	"context"
	"fmt"
	"io"

	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// Distro is what distro extractors need from os-release to label packages.
type Distro struct {
	ID        string // os-release ID: debian, ubuntu, alpine, rhel, almalinux, rocky
	VersionID string // os-release VERSION_ID
	// Ecosystem is the OSV ecosystem with release ("Debian:12"); empty when
	// the release is unknown, in which case extractors fall back to the bare
	// ecosystem name and matching will not find distro advisories.
	Ecosystem string
}

// Input is one file to extract from.
type Input struct {
	// Path is recorded as Package.Location: the file's path as seen on the
	// scanned host (for example /var/lib/dpkg/status), not on the scanner.
	Path   string
	Reader io.Reader
	// File is the file's path on the scanner, for extractors whose library
	// opens files itself (rpm's sqlite and Berkeley DB databases).
	File   string
	Distro Distro
}

// Result is what one file yielded. Warnings name records that were skipped;
// the packages are everything that could be read.
type Result struct {
	Packages []inventory.Package
	Warnings []string
	// OS is the operating system the file itself names (an SBOM's
	// metadata), nil when it names none.
	OS *Distro
}

// Warnf records a skipped record, naming the file. The collector logs
// warnings once per scan, so parsers stay quiet (and fuzzable).
func (r *Result) Warnf(path, format string, args ...any) {
	r.Warnings = append(r.Warnings, path+": "+fmt.Sprintf(format, args...))
}

// Extractor turns one file of one format into packages.
type Extractor interface {
	// Name identifies the extractor in warnings and tests ("os/dpkg").
	Name() string
	// FileRequired reports whether the extractor wants the file at path
	// (slash-separated, relative to the scanned root, no leading slash).
	FileRequired(path string) bool
	// Extract reads one file. A returned error means the file as a whole
	// could not be read; the Result still holds whatever was read before the
	// failure and the caller keeps it.
	Extract(ctx context.Context, in *Input) (Result, error)
}
