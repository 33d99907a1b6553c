// Package rpmdb reads the rpm database itself (sqlite, Berkeley DB or ndb)
// with github.com/erikvarga/go-rpmdb, the pure-Go reader osv-scalibr uses
// (sqlite through modernc.org/sqlite, so CGO stays off).
package rpmdb

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	rpmdb "github.com/erikvarga/go-rpmdb/pkg"
	// go-rpmdb opens rpmdb.sqlite through database/sql's "sqlite" driver.
	_ "modernc.org/sqlite"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/scanner/inventory/rpm"
)

// Timeout bounds reading one database: a corrupt Berkeley DB can make the
// reader loop.
const Timeout = 2 * time.Minute

var (
	dirs  = map[string]bool{"var/lib/rpm/": true, "usr/lib/sysimage/rpm/": true}
	files = map[string]bool{"Packages": true, "Packages.db": true, "rpmdb.sqlite": true}
)

// Extractor reads rpm databases.
type Extractor struct{}

// Name implements extract.Extractor.
func (Extractor) Name() string { return "os/rpmdb" }

// FileRequired implements extract.Extractor.
func (Extractor) FileRequired(p string) bool {
	dir, base := path.Split(p)
	return dirs[dir] && files[base]
}

// Extract implements extract.Extractor; it needs in.File (the library opens
// the database itself).
func (Extractor) Extract(ctx context.Context, in *extract.Input) (extract.Result, error) {
	var res extract.Result
	if in.File == "" {
		return res, errors.New("rpmdb: needs a file path, not a stream")
	}
	pkgs, err := listPackages(ctx, in.File)
	if err != nil {
		return res, fmt.Errorf("read rpm database %s (truncated or corrupt? no packages are kept from it): %w", in.Path, err)
	}
	for _, p := range pkgs {
		n := rpm.NEVRA{Name: p.Name, Version: p.Version, Release: p.Release, Arch: p.Arch}
		if p.Epoch != nil {
			n.Epoch = strconv.Itoa(*p.Epoch)
		}
		if n.Name == "" || n.Version == "" {
			res.Warnf(in.Path, "entry without name or version (%q %q) skipped", p.Name, p.Version)
			continue
		}
		if n.Name == "gpg-pubkey" {
			continue // imported signing keys, not software
		}
		pkg := rpm.NewPackage(in, n)
		if p.SourceRpm != "" && p.SourceRpm != "(none)" {
			src, err := rpm.ParseNEVRA(strings.TrimSuffix(p.SourceRpm, ".rpm"))
			if err != nil {
				res.Warnf(in.Path, "%s: source rpm %q: %v", n.Name, p.SourceRpm, err)
			} else {
				src.Epoch = n.Epoch
				pkg.SourceName, pkg.SourceVersion = src.Name, src.EVR()
			}
		}
		pkg.PURL = rpm.PURL(in.Distro, &pkg, n.Epoch)
		res.Packages = append(res.Packages, pkg)
	}
	return res, nil
}

// listPackages reads every package of the database at file. go-rpmdb
// panics on some truncated databases (an NDB Packages.db cut short slices
// out of range): a corrupt file is an error of this input, never a crash
// of the scanner.
func listPackages(ctx context.Context, file string) (_ []*rpmdb.PackageInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rpm database reader failed: %v", r)
		}
	}()
	if err := checkNDB(file); err != nil {
		return nil, err
	}
	db, err := rpmdb.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	return db.ListPackagesWithContext(ctx)
}
