// Package lang finds language lockfiles under a directory and reads them with
// osv-scalibr's extractors. Versions are as the OSV ecosystem writes them:
// Go module versions lose their "v" (golang.org/x/text 0.3.6), matching
// OSV SEMVER events.
package lang

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gomod"
	"github.com/google/osv-scalibr/extractor/filesystem/language/java/gradlelockfile"
	"github.com/google/osv-scalibr/extractor/filesystem/language/java/pomxml"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/bunlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagelockjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/pnpmlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/yarnlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/php/composerlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/pipfilelock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/poetrylock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/requirements"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/uvlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemfilelock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargolock"
	scalibrfs "github.com/google/osv-scalibr/fs"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// MaxDepth bounds how deep Scan descends below a --path directory.
const MaxDepth = 12

// skipDirs are never descended into: installed trees, not lockfiles.
var skipDirs = map[string]bool{"node_modules": true, ".git": true, "vendor": true, "__pycache__": true, ".venv": true}

// Extractors returns the lockfile extractors, one per format.
func Extractors() []filesystem.Extractor {
	ctors := []func() (filesystem.Extractor, error){
		func() (filesystem.Extractor, error) { return gomod.New(nil) },
		func() (filesystem.Extractor, error) { return packagelockjson.New(nil) },
		func() (filesystem.Extractor, error) { return yarnlock.New(nil) },
		func() (filesystem.Extractor, error) { return pnpmlock.New(nil) },
		func() (filesystem.Extractor, error) { return bunlock.New(nil) },
		func() (filesystem.Extractor, error) { return requirements.New(nil) },
		func() (filesystem.Extractor, error) { return pipfilelock.New(nil) },
		func() (filesystem.Extractor, error) { return poetrylock.New(nil) },
		func() (filesystem.Extractor, error) { return uvlock.New(nil) },
		func() (filesystem.Extractor, error) { return pomxml.New(nil) },
		func() (filesystem.Extractor, error) { return gradlelockfile.New(nil) },
		func() (filesystem.Extractor, error) { return cargolock.New(nil) },
		func() (filesystem.Extractor, error) { return composerlock.New(nil) },
		func() (filesystem.Extractor, error) { return gemfilelock.New(nil) },
	}
	out := make([]filesystem.Extractor, 0, len(ctors))
	for _, c := range ctors {
		// These constructors ignore their config and never fail; a failure
		// would be a programming error in a dependency upgrade.
		e, err := c()
		if err != nil {
			panic(fmt.Sprintf("lockfile extractor with nil config: %v", err))
		}
		out = append(out, e)
	}
	return out
}

type fileAPI struct {
	path string
	info fs.FileInfo
}

func (f fileAPI) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f fileAPI) Path() string               { return f.path }

// Scan reads every lockfile under dir (or dir itself when it is a file).
// A lockfile that fails to parse is a warning; the others still count.
func Scan(ctx context.Context, dir string) (extract.Result, error) {
	var res extract.Result
	abs, err := filepath.Abs(dir)
	if err != nil {
		return res, fmt.Errorf("lockfiles under %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return res, fmt.Errorf("lockfiles under %s: %w", dir, err)
	}
	root := abs
	if !st.IsDir() {
		root = filepath.Dir(abs)
	}
	exs := Extractors()
	sfs := scalibrfs.DirFS(root)
	walkErr := filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			res.Warnf(p, "%v", err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if p != abs && (skipDirs[d.Name()] || depth(rel) > MaxDepth) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			res.Warnf(p, "%v", err)
			return nil
		}
		for _, ex := range exs {
			if !ex.FileRequired(fileAPI{path: rel, info: info}) {
				continue
			}
			extractOne(ctx, ex, sfs, root, rel, p, info, &res)
		}
		return nil
	})
	if walkErr != nil {
		return res, fmt.Errorf("lockfiles under %s: %w", dir, walkErr)
	}
	return res, nil
}

func depth(rel string) int {
	n := 1
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' {
			n++
		}
	}
	return n
}

func extractOne(ctx context.Context, ex filesystem.Extractor, sfs scalibrfs.FS, root, rel, abs string, info fs.FileInfo, res *extract.Result) {
	f, err := os.Open(abs)
	if err != nil {
		res.Warnf(abs, "%s: %v", ex.Name(), err)
		return
	}
	defer f.Close()
	inv, err := ex.Extract(ctx, &filesystem.ScanInput{FS: sfs, Path: rel, Root: root, Info: info, Reader: f})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		res.Warnf(abs, "%s: %v", ex.Name(), err)
	}
	pkgs := make([]inventory.Package, 0, len(inv.Packages))
	for _, sp := range inv.Packages {
		eco := sp.Ecosystem().String()
		if eco == "" || sp.Name == "" || sp.Version == "" {
			// pom.xml properties that do not resolve, git dependencies and
			// the like: nothing an advisory can be matched against.
			res.Warnf(abs, "%s: skipped %q version %q (no ecosystem or version)", ex.Name(), sp.Name, sp.Version)
			continue
		}
		p := inventory.Package{Ecosystem: eco, Name: sp.Name, Version: sp.Version, Location: abs}
		if u := sp.PURL(); u != nil {
			p.PURL = u.String()
		}
		pkgs = append(pkgs, p)
	}
	// scalibr returns some formats in map order.
	sort.Slice(pkgs, func(i, j int) bool {
		if pkgs[i].Name != pkgs[j].Name {
			return pkgs[i].Name < pkgs[j].Name
		}
		return pkgs[i].Version < pkgs[j].Version
	})
	res.Packages = append(res.Packages, pkgs...)
}
