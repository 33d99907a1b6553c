package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/failon"
	"github.com/patchgrid/patchgrid/analytics/localreport"
	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/scanner/inventory"
	"github.com/patchgrid/patchgrid/scanner/inventory/lang"
	"github.com/patchgrid/patchgrid/schemas"
	schema "github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// reportFlags are scan's local-report and inventory-file flags
// (`patchgrid scan --report`). They live here so scan.go only registers
// them, hands over collection and branches to the report.
type reportFlags struct {
	report        bool
	format        string
	output        string
	failOn        failon.Threshold
	ignoreFile    string
	ignoreUnfixed bool
	noFeedLoad    bool
	dryRunFormat  string
	feeds         listFlag
	cacheDir      string
	files         localreport.Files
	store         *storeFlags
}

// addReportFlags registers the flags on fs. The release of inventory files
// comes from scan's --os (inventory.Config.OS), as for the collectors.
func addReportFlags(fs *flag.FlagSet, env *cliEnv) *reportFlags {
	rf := &reportFlags{}
	fs.BoolVar(&rf.report, "report", false, "match the inventory against the embedded store's advisories here (no Kafka) and print a report; feeds are loaded first when the store has none")
	fs.StringVar(&rf.format, "format", "table", "--report output: "+strings.Join(localreport.Formats, ", "))
	fs.StringVar(&rf.output, "output", "", "--report: write the report to this file instead of stdout")
	fs.Var(&rf.failOn, "fail-on", "--report: "+failon.Usage())
	fs.StringVar(&rf.ignoreFile, "ignore-file", "", "--report: YAML file of findings to hide, each entry with id, expires and reason (expired entries are warned about and no longer hide)")
	fs.BoolVar(&rf.ignoreUnfixed, "ignore-unfixed", false, "--report: leave out findings that have no fixed version yet")
	fs.BoolVar(&rf.noFeedLoad, "no-feed-load", false, "--report: never load feeds; fail when the store has no advisories")
	fs.Var(&rf.feeds, "feeds", "--report: feed locations loaded when the store has no advisories (default: $PATCHGRID_SHARED_DATA or ~/.local/share/patchgrid/shared when it exists, else the official feed URLs)")
	fs.StringVar(&rf.cacheDir, "cache-dir", defaultCacheDir(env), "--report: where downloaded feeds are cached")
	fs.StringVar(&rf.dryRunFormat, "dry-run-format", "packages", `--dry-run output: packages (JSON lines {"ecosystem","name","version",...} that 'patchgrid match' reads) or scan (the whole scan as one JSON object)`)
	fs.Var((*stringList)(&rf.files.DpkgStatus), "dpkg-status", "read packages from this dpkg status file instead of the root (repeatable; --os when its release cannot be told)")
	fs.Var((*stringList)(&rf.files.APKInstalled), "apk-installed", "read packages from this apk installed database instead of the root (repeatable; --os when its release cannot be told)")
	fs.Var((*stringList)(&rf.files.RPMManifest), "rpm-manifest", "read packages from this rpm-manifest JSON instead of the root (repeatable; --os when its release cannot be told)")
	rf.store = addStoreFlags(fs, env)
	return rf
}

// check validates the flag combination; it returns a usage error.
func (rf *reportFlags) check(sbom string, dryRun bool) error {
	if !rf.files.Empty() && sbom != "" {
		return errors.New("--sbom and inventory files (--dpkg-status, --apk-installed, --rpm-manifest) exclude each other")
	}
	if rf.report && dryRun {
		return errors.New("--report and --dry-run exclude each other")
	}
	if rf.dryRunFormat != "packages" && rf.dryRunFormat != "scan" {
		return fmt.Errorf("invalid --dry-run-format %q (want packages or scan)", rf.dryRunFormat)
	}
	if !rf.report {
		return nil
	}
	if !slices.Contains(localreport.Formats, rf.format) {
		return fmt.Errorf("invalid --format %q (want %s)", rf.format, strings.Join(localreport.Formats, ", "))
	}
	return nil
}

// collect builds the scan: from the inventory files when given, else with
// the scanner's collectors (root or SBOM).
func (rf *reportFlags) collect(ctx context.Context, cfg inventory.Config) (*schema.Scan, error) {
	if rf.files.Empty() {
		return inventory.Collect(ctx, cfg)
	}
	pkgs, osInfo, warn, err := localreport.FromFiles(ctx, rf.files, cfg.OS)
	if err != nil {
		return nil, err
	}
	for _, p := range cfg.Paths {
		res, err := lang.Scan(ctx, p)
		warn = append(warn, res.Warnings...)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			warn = append(warn, err.Error())
		}
		pkgs = append(pkgs, res.Packages...)
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	first := firstFile(rf.files)
	s := &schema.Scan{HostID: cfg.HostID, ScanID: id, ScannedAt: time.Now().UTC(), Hostname: cfg.Hostname, OS: osInfo,
		Meta: cfg.Meta, Packages: pkgs, Warnings: warn}
	if s.HostID == "" {
		s.HostID = "file:" + filepath.Base(first)
	}
	s.InventoryHash = schema.HashPackages(pkgs)
	return s, nil
}

func firstFile(f localreport.Files) string {
	for _, l := range [][]string{f.DpkgStatus, f.APKInstalled, f.RPMManifest} {
		if len(l) > 0 {
			return l[0]
		}
	}
	return ""
}

func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("scan id: %w", err)
	}
	return fmt.Sprintf("%x", b), nil
}

// sources names what the scan read, for the report header.
func (rf *reportFlags) sources(cfg inventory.Config) []string {
	var out []string
	out = append(out, rf.files.DpkgStatus...)
	out = append(out, rf.files.APKInstalled...)
	out = append(out, rf.files.RPMManifest...)
	switch {
	case cfg.SBOM != "":
		out = append(out, cfg.SBOM)
	case len(out) == 0:
		out = append(out, "root "+cfg.Root)
	}
	return append(out, cfg.Paths...)
}

// dryRunLine is one package of `scan --dry-run`: the fields `patchgrid
// match` reads, then what else the scanner knows (match ignores those).
type dryRunLine struct {
	Ecosystem     string `json:"ecosystem"`
	Name          string `json:"name"`
	Version       string `json:"version"`
	SourceName    string `json:"source_name,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	Arch          string `json:"arch,omitempty"`
	PURL          string `json:"purl,omitempty"`
	Location      string `json:"location,omitempty"`
}

// writeDryRun prints the scan for --dry-run.
func (rf *reportFlags) writeDryRun(w io.Writer, s *schema.Scan) error {
	if rf.dryRunFormat == "scan" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range s.Packages {
		p := &s.Packages[i]
		if err := enc.Encode(dryRunLine{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version, SourceName: p.SourceName,
			SourceVersion: p.SourceVersion, Arch: p.Arch, PURL: p.PURL, Location: p.Location}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// runReport is `scan --report`: match the scan against the embedded store
// and write the report. Exit codes: 0 clean (or below --fail-on), 3 findings
// at or above --fail-on, 1 failure, including a partial inventory under
// --fail-on (a gate must not pass on what it could not read).
func (rf *reportFlags) runReport(ctx context.Context, env *cliEnv, s *schema.Scan, cfg inventory.Config) int {
	fail := func(err error) int {
		fmt.Fprintf(env.stderr, "patchgrid scan --report: %v\n", err)
		return exitFailure
	}
	opts := localreport.Options{IgnoreUnfixed: rf.ignoreUnfixed}
	if rf.ignoreFile != "" {
		ig, err := localreport.ReadIgnoreFile(rf.ignoreFile)
		if err != nil {
			return fail(err)
		}
		opts.Ignore = ig
	}
	log := env.logger(slog.LevelWarn)
	st, err := rf.store.open(ctx)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, log); err != nil {
		return fail(err)
	}
	if err := rf.ensureFeeds(ctx, env, st, log); err != nil {
		return fail(err)
	}
	r, err := localreport.Build(ctx, st, s, rf.sources(cfg), opts)
	if err != nil {
		return fail(err)
	}
	for _, w := range append(r.Warnings, r.Expired...) {
		fmt.Fprintf(env.stderr, "patchgrid scan --report: warning: %s\n", w)
	}
	out := env.stdout
	var file *os.File
	if rf.output != "" {
		if file, err = os.Create(rf.output); err != nil {
			return fail(fmt.Errorf("report output: %w", err))
		}
		out = file
	}
	werr := localreport.Write(out, r, rf.format, toolVersion(), localreport.TableOptions{Color: rf.output == "" && useColor(env)})
	if file != nil {
		if err := file.Close(); err != nil && werr == nil {
			werr = err
		}
	}
	if werr != nil {
		return fail(fmt.Errorf("writing the %s report: %w", rf.format, werr))
	}
	if !rf.failOn.Enabled() {
		return exitOK
	}
	if n := r.Failing(rf.failOn); n > 0 {
		fmt.Fprintf(env.stderr, "patchgrid scan --report: %d findings trip --fail-on %s\n", n, rf.failOn.String())
		return exitFindings
	}
	if !r.Complete {
		return fail(fmt.Errorf("no finding trips --fail-on %s, but the inventory is partial (%d warnings, %d packages not checked): not passing the gate",
			rf.failOn.String(), len(r.Warnings), len(r.NotChecked)))
	}
	return exitOK
}

// ensureFeeds loads feeds into a store that has no advisory records, so
// the first `scan --report` works on a fresh machine.
func (rf *reportFlags) ensureFeeds(ctx context.Context, env *cliEnv, st store.Store, log *slog.Logger) error {
	status, err := feeds.Status(ctx, st)
	if err != nil {
		return err
	}
	var records uint64
	for _, s := range status {
		records += s.Records - min(s.Withdrawn, s.Records)
	}
	if records > 0 {
		return nil
	}
	if rf.noFeedLoad {
		return fmt.Errorf("the store in %s has no advisories and --no-feed-load is set: run 'patchgrid feeds load --from LOCATION' first", rf.store.dataDir)
	}
	locations := []string(rf.feeds)
	if len(locations) == 0 {
		locations = defaultFeedLocations()
	}
	fmt.Fprintf(env.stderr, "patchgrid scan --report: the store has no advisories; loading %s (once)\n", strings.Join(locations, ", "))
	_, errs := loadFeeds(ctx, st, rf.cacheDir, locations, log)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("load feeds: %w", err)
	}
	return nil
}

// useColor: colours on a terminal only, and never with NO_COLOR set
// (https://no-color.org) or TERM=dumb.
func useColor(env *cliEnv) bool {
	if env.getenv("NO_COLOR") != "" || env.getenv("TERM") == "dumb" {
		return false
	}
	f, ok := env.stdout.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// toolVersion is the module version the binary was built from.
func toolVersion() string {
	ver, _, _, _ := buildIdentity()
	return ver
}
