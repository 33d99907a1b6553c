package simulate

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	scaninv "github.com/patchgrid/patchgrid/scanner/inventory"
)

// UpgradesFile is the real upgrade-path list of the shared data set, relative
// to the inventories directory.
const UpgradesFile = "dpkg/debian12-bookworm-host-b.upgrades.tsv"

// ReadUpgrades parses `apt list --upgradable` as TSV: a header line, then
// package, candidate_version, installed_version. Malformed lines are errors
// naming the line: the file is small and hand-checked.
func ReadUpgrades(r io.Reader, name string) ([]Upgrade, error) {
	var ups []Upgrade
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") || (line == 1 && strings.HasPrefix(text, "package\t")) {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
			return nil, fmt.Errorf("%s:%d: want package, candidate_version, installed_version; got %q", name, line, text)
		}
		ups = append(ups, Upgrade{Package: f[0], Fixed: f[1], Vulnerable: f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return ups, nil
}

// LoadUpgrades reads an upgrades TSV file.
func LoadUpgrades(path string) ([]Upgrade, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("upgrade paths: %w", err)
	}
	defer f.Close()
	return ReadUpgrades(f, path)
}

// ReadFunc reads one inventory file into a base; an error means the file
// is not an inventory it can read.
type ReadFunc func(ctx context.Context, path string) (Base, error)

// LoadBases reads every file under dir that read accepts, in path order (so
// the fleet does not depend on directory listing order). Files read rejects
// are skipped and logged at debug level: a directory of real data holds
// READMEs, checksums and formats the reader does not know.
func LoadBases(ctx context.Context, dir string, read ReadFunc, log *slog.Logger) ([]Base, error) {
	if log == nil {
		log = slog.Default()
	}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inventories %s: %w", dir, err)
	}
	sort.Strings(paths)
	var bases []Base
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := read(ctx, p)
		if err != nil {
			log.Debug("not a usable inventory", "file", p, "err", err)
			continue
		}
		if b.Name == "" {
			b.Name, _ = filepath.Rel(dir, p)
		}
		bases = append(bases, b)
	}
	if len(bases) == 0 {
		return nil, fmt.Errorf("inventories %s: no readable inventory", dir)
	}
	return bases, nil
}

// ReadInventory is the ReadFunc over scanner/inventory.ReadFile: any
// inventory format it detects, with its OS guess. Files without an OS
// (language lockfiles) are read but NewFleet leaves them out.
func ReadInventory(ctx context.Context, path string) (Base, error) {
	f, err := scaninv.ReadFile(ctx, path)
	if err != nil {
		return Base{}, err
	}
	return Base{OS: f.OS, Packages: f.Packages}, nil
}
