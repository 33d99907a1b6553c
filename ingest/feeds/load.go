// Package feeds loads advisory and risk feeds into ClickHouse: OSV (JSON,
// YAML, JSONL, zip, tar.gz), Alpine/Wolfi/Chainguard secdb, the Debian
// security tracker, Red Hat CSAF and VEX, the Node.js security WG, CISA KEV
// and FIRST EPSS. Parsing lives in one pure package per format
// (ingest/feeds/<format>); this package owns files, archives, downloads,
// the store and progress.
//
// Loads are incremental. Each advisory's record_hash is the hash of its
// normalized content; a record whose hash equals the stored current one is
// not written. A new or changed record writes its ranges under the new hash
// first and its advisories row last, so a load that fails midway leaves the
// previous rows current (see schemas/migrations/0002_feeds.sql). Within one
// load, a record id met twice keeps its first occurrence (a later copy with
// other content is skipped with a warning), so loading a tree that holds
// the same feed twice (PyPA YAML and its JSONL export) stays idempotent.
//
// Sources (advisories.source, feed_loads.source):
//
//	osv                     every OSV-schema record (GHSA, GO, PYSEC, DEBIAN, UBUNTU, ...): ids are global
//	alpine-secdb:<rel>/<repo>[/<pkg>], wolfi-secdb, chainguard-secdb
//	                        secdb documents; the id is the CVE, so the source names
//	                        the document's scope (see ingest/feeds/alpine)
//	debian-tracker          DSA-/DLA- list entries and tracker-JSON CVEs
//	redhat-csaf, redhat-vex RHSA documents and per-CVE VEX documents
//	nodejs-wg               NSWG-ECO-<id> npm advisories
//	kev, epss               the risk tables (feed_loads only)
//
// Feeds are outside input: every input is bounded before it is parsed
// (Limits: document size, total decompressed size and compression ratio
// per archive; schemas/yamlsafe for YAML), and an input refused whole
// makes Load return a *RejectedError after the rest is loaded (see Load
// and SECURITY.md).
//
// Online feeds (fetch.go): OSV per-ecosystem exports at
// https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip,
// the KEV catalog at
// https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json
// and EPSS at https://epss.empiricalsecurity.com/epss_scores-current.csv.gz,
// cached with ETag / Last-Modified.
package feeds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds/epss"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/ingest/feeds/kev"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/yamlsafe"
)

// Loader writes feeds into a store. Zero values of optional fields are
// defaults.
type Loader struct {
	Store  store.Store
	Lookup feed.LookupFunc // version comparators: schemas/version.Lookup
	Log    *slog.Logger    // default slog.Default()
	// BatchSize is how many changed advisories are written per batch
	// (ranges first, then their advisories rows). Default 2000.
	BatchSize int
	// ProgressEvery is the interval of progress log lines. Default 5s.
	ProgressEvery time.Duration
	// Now gives load timestamps. Default time.Now.
	Now func() time.Time
	// Limits bound each input's size and decompression (see Limits).
	Limits Limits
}

// Summary counts one load of one source from one location. When the load
// failed (Err), the counts say what was read and compared, not what was
// written.
type Summary struct {
	Source   string
	Location string
	Started  time.Time
	Finished time.Time
	// Records read; each is then exactly one of loaded (new), updated
	// (content changed), unchanged, or skipped (malformed or a duplicate
	// id with other content in the same load).
	Records   uint64
	Loaded    uint64
	Updated   uint64
	Unchanged uint64
	Skipped   uint64
	// Withdrawn counts written records that are withdrawn.
	Withdrawn uint64
	// RangesSkipped counts ranges dropped from records that still loaded.
	RangesSkipped  uint64
	NewestModified time.Time
	Err            string
}

type sourceState struct {
	sum    Summary
	stored map[string]string // advisory_id → current record_hash
	seen   map[string]string // advisory_id → hash written or kept in this load
}

type loadRun struct {
	l       *Loader
	loc     string
	started time.Time
	now     time.Time
	sources map[string]*sourceState
	order   []string
	pending []feed.Advisory
	kev     []kev.Entry
	// epssLoad is the newest score per CVE read in this load.
	epssLoad map[string]epss.Score
	records  uint64
	lastLog  time.Time
	// rejected are the inputs refused whole (see Load).
	rejected []Rejection
}

func (l *Loader) defaults() {
	if l.Log == nil {
		l.Log = slog.Default()
	}
	if l.BatchSize <= 0 {
		l.BatchSize = 2000
	}
	if l.ProgressEvery <= 0 {
		l.ProgressEvery = 5 * time.Second
	}
	if l.Now == nil {
		l.Now = time.Now
	}
}

// Load loads every document under location (a file, a directory or an
// archive) and returns one summary per source it found. A malformed record
// is logged, counted as skipped and the load goes on. An input refused
// whole is logged and the load goes on too, but Load then returns a
// *RejectedError listing them (after writing everything else): a file or
// archive that cannot be read or is over Limits, a document over the YAML
// limits, a document holding many records (secdb, Debian lists, KEV, EPSS)
// that does not parse, and a location that is a single file yielding
// nothing. Store failures and cancellation return that error instead,
// after writing feed_loads rows that carry it.
func (l *Loader) Load(ctx context.Context, location string) ([]Summary, error) {
	l.defaults()
	if l.Store == nil || l.Lookup == nil {
		return nil, errors.New("feeds: Loader needs a Store and a Lookup")
	}
	r := &loadRun{l: l, loc: location, started: l.Now(), sources: map[string]*sourceState{}}
	r.now = r.started.UTC().Truncate(time.Second)
	r.lastLog = r.started
	err := walkLocation(ctx, location, l.Limits, func(d document) error { return r.document(ctx, d) },
		func(name string, err error) {
			l.Log.Warn("feeds: input rejected", "file", name, "reason", err)
			r.rejected = append(r.rejected, Rejection{Name: name, Reason: err.Error()})
		})
	if err == nil {
		err = r.flush(ctx)
	}
	if err == nil {
		err = r.writeKEV(ctx)
	}
	if err == nil {
		err = r.writeEPSS(ctx)
	}
	sums, err := r.finish(ctx, err)
	if err == nil && len(r.rejected) > 0 {
		err = &RejectedError{Location: location, Inputs: r.rejected}
	}
	return sums, err
}

// RejectedError lists the inputs of a load that were refused whole; the
// rest of the location was loaded. Retrying does not help: the inputs must
// be replaced.
type RejectedError struct {
	Location string
	Inputs   []Rejection
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "feeds: %d input(s) of %s rejected", len(e.Inputs), e.Location)
	for i, in := range e.Inputs {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Inputs)-i)
			break
		}
		fmt.Fprintf(&b, "; %s: %s", in.Name, in.Reason)
	}
	return b.String()
}

// wholeFormats hold many records per document: such a document failing to
// parse loses all of them, so it is a rejected input, not a skipped record.
var wholeFormats = map[Format]bool{
	FormatAlpineSecDB: true, FormatDebianList: true, FormatDebianTracker: true, FormatKEV: true, FormatEPSS: true,
}

func (r *loadRun) source(name string) *sourceState {
	s := r.sources[name]
	if s == nil {
		s = &sourceState{sum: Summary{Source: name, Location: r.loc, Started: r.started}, seen: map[string]string{}}
		r.sources[name] = s
		r.order = append(r.order, name)
	}
	return s
}

func (r *loadRun) document(ctx context.Context, d document) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := parseDocument(d, r.addEPSS)
	for _, pr := range p.problems {
		r.l.Log.Warn("feeds: skipped input", "file", pr.File, "id", pr.ID, "reason", pr.Reason)
	}
	if err != nil {
		// A location that is one plain file is the input itself.
		single := d.name == r.loc
		if errors.Is(err, errNotFeed) && !single {
			r.l.Log.Debug("feeds: not a feed document", "file", d.name, "reason", err)
			return nil
		}
		f, _ := detect(d)
		if single || wholeFormats[f] || errors.Is(err, yamlsafe.ErrLimit) {
			r.l.Log.Warn("feeds: input rejected", "file", d.name, "format", string(f), "reason", err)
			r.rejected = append(r.rejected, Rejection{Name: d.name, Format: f, Reason: err.Error()})
			if errors.Is(err, errNotFeed) {
				return nil
			}
		} else {
			r.l.Log.Warn("feeds: document skipped", "file", d.name, "format", string(f), "reason", err)
		}
		src := defaultSource[f]
		if src == "" {
			src = "unknown"
		}
		s := r.source(src)
		s.sum.Records++
		s.sum.Skipped++
		return nil
	}
	if len(p.kev) > 0 {
		s := r.source(SourceKEV)
		s.sum.Records += uint64(len(p.kev))
		s.sum.Skipped += uint64(len(p.problems))
		r.kev = append(r.kev, p.kev...)
	}
	if p.format == FormatEPSS {
		r.source(SourceEPSS).sum.Skipped += uint64(len(p.problems))
	}
	for i := range p.advisories {
		if err := r.advisory(ctx, &p.advisories[i]); err != nil {
			return err
		}
	}
	return nil
}

func (r *loadRun) advisory(ctx context.Context, a *feed.Advisory) error {
	s := r.source(a.Source)
	s.sum.Records++
	r.records++
	r.progress()
	probs := feed.Key(a, r.l.Lookup)
	for _, p := range probs {
		r.l.Log.Warn("feeds: range skipped", "file", p.File, "id", p.ID, "reason", p.Reason)
	}
	s.sum.RangesSkipped += uint64(len(probs))
	if a.Modified.After(s.sum.NewestModified) {
		s.sum.NewestModified = a.Modified
	}
	h := a.Hash()
	if prev, ok := s.seen[a.ID]; ok {
		if prev == h {
			s.sum.Unchanged++
		} else {
			s.sum.Skipped++
			r.l.Log.Warn("feeds: duplicate record id with other content in this load; the first one is kept", "file", a.File, "id", a.ID, "source", a.Source)
		}
		return nil
	}
	s.seen[a.ID] = h
	if s.stored == nil {
		var err error
		if s.stored, err = r.currentHashes(ctx, a.Source); err != nil {
			return err
		}
	}
	prev, existed := s.stored[a.ID]
	switch {
	case existed && prev == h:
		s.sum.Unchanged++
		return nil
	case existed:
		s.sum.Updated++
	default:
		s.sum.Loaded++
	}
	if a.Withdrawn {
		s.sum.Withdrawn++
	}
	r.pending = append(r.pending, *a)
	if len(r.pending) >= r.l.BatchSize {
		return r.flush(ctx)
	}
	return nil
}

func (r *loadRun) progress() {
	now := r.l.Now()
	if now.Sub(r.lastLog) < r.l.ProgressEvery {
		return
	}
	el := now.Sub(r.started).Seconds()
	r.l.Log.Info("feeds: loading", "location", r.loc, "records", r.records, "records_per_s", math.Round(float64(r.records)/el))
	r.lastLog = now
}

func (r *loadRun) currentHashes(ctx context.Context, source string) (map[string]string, error) {
	rows, err := r.l.Store.Query(ctx, queryCurrentHashes, source)
	if err != nil {
		return nil, fmt.Errorf("feeds: current hashes of %s: %w", source, err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var id, h string
		if err := rows.Scan(&id, &h); err != nil {
			return nil, fmt.Errorf("feeds: current hashes of %s: %w", source, err)
		}
		m[id] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("feeds: current hashes of %s: %w", source, err)
	}
	return m, nil
}

// flush writes the pending records: all their ranges, then their
// advisories rows. Only after the second insert are the new hashes current.
func (r *loadRun) flush(ctx context.Context) error {
	if len(r.pending) == 0 {
		return nil
	}
	var ranges, advs [][]any
	for i := range r.pending {
		a := &r.pending[i]
		h := r.sources[a.Source].seen[a.ID]
		for j, rg := range a.Ranges {
			ranges = append(ranges, []any{
				a.Source, a.ID, h, rg.Ecosystem, rg.Package, uint16(j), rg.Type, rg.Status, rg.Comparator,
				rg.Introduced, rg.IntroducedKey, rg.Fixed, rg.FixedKey, rg.LastAffected, rg.LastAffectedKey, dateTime(rg.FixPublished),
			})
		}
		var withdrawn uint8
		if a.Withdrawn {
			withdrawn = 1
		}
		cves := a.CVEs()
		if cves == nil {
			cves = []string{}
		}
		aliases := a.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		advs = append(advs, []any{
			a.Source, a.ID, h, dateTime(a.Modified), dateTime(a.Published), withdrawn, aliases, cves,
			a.Summary, a.Severity, a.CVSS.Version, a.CVSS.Vector, float32(a.CVSS.Score), a.File, a.Specific, r.now,
		})
	}
	if err := r.l.Store.Insert(ctx, "affected_ranges", rangeColumns, ranges); err != nil {
		return fmt.Errorf("feeds: writing %d ranges of %d records (first %s %s): %w", len(ranges), len(r.pending), r.pending[0].Source, r.pending[0].ID, err)
	}
	if err := r.l.Store.Insert(ctx, "advisories", advisoryColumns, advs); err != nil {
		return fmt.Errorf("feeds: writing %d advisories (first %s %s): %w", len(advs), r.pending[0].Source, r.pending[0].ID, err)
	}
	for i := range r.pending {
		a := &r.pending[i]
		r.sources[a.Source].stored[a.ID] = r.sources[a.Source].seen[a.ID]
	}
	r.pending = r.pending[:0]
	return nil
}

// writeKEV writes the catalog rows that differ from the stored ones.
func (r *loadRun) writeKEV(ctx context.Context) error {
	if len(r.kev) == 0 {
		return nil
	}
	s := r.source(SourceKEV)
	rows, err := r.l.Store.Query(ctx, queryCurrentKEV)
	if err != nil {
		return fmt.Errorf("feeds: current kev: %w", err)
	}
	cur := map[string]kev.Entry{}
	for rows.Next() {
		var e kev.Entry
		if err := rows.Scan(&e.CVE, &e.Vendor, &e.Product, &e.Name, &e.DateAdded, &e.DueDate, &e.Ransomware, &e.CatalogVersion); err != nil {
			rows.Close()
			return fmt.Errorf("feeds: current kev: %w", err)
		}
		cur[e.CVE] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("feeds: current kev: %w", err)
	}
	var out [][]any
	seen := map[string]bool{}
	for _, e := range r.kev {
		if seen[e.CVE] {
			s.sum.Skipped++
			continue
		}
		seen[e.CVE] = true
		if e.DateAdded.After(s.sum.NewestModified) {
			s.sum.NewestModified = e.DateAdded
		}
		c, ok := cur[e.CVE]
		switch {
		case ok && sameKEV(c, e):
			s.sum.Unchanged++
			continue
		case ok:
			s.sum.Updated++
		default:
			s.sum.Loaded++
		}
		out = append(out, []any{e.CVE, e.Vendor, e.Product, e.Name, e.DateAdded, e.DueDate, e.Ransomware, e.CatalogVersion, r.now})
	}
	if err := r.l.Store.Insert(ctx, "kev", kevColumns, out); err != nil {
		return fmt.Errorf("feeds: writing %d kev rows: %w", len(out), err)
	}
	return nil
}

func sameKEV(a, b kev.Entry) bool {
	return a.CVE == b.CVE && a.Vendor == b.Vendor && a.Product == b.Product && a.Name == b.Name &&
		a.DateAdded.Format(time.DateOnly) == b.DateAdded.Format(time.DateOnly) &&
		a.DueDate.Format(time.DateOnly) == b.DueDate.Format(time.DateOnly) &&
		a.Ransomware == b.Ransomware && a.CatalogVersion == b.CatalogVersion
}

const epssBatch = 50000

// addEPSS keeps the newest score of each CVE seen in this load (a directory
// can hold several daily files); they are compared with the store and
// written at the end.
func (r *loadRun) addEPSS(sc epss.Score) error {
	s := r.source(SourceEPSS)
	s.sum.Records++
	r.records++
	r.progress()
	if r.epssLoad == nil {
		r.epssLoad = map[string]epss.Score{}
	}
	if prev, ok := r.epssLoad[sc.CVE]; ok {
		// A superseded duplicate is counted as unchanged: it writes nothing.
		s.sum.Unchanged++
		if !sc.ScoreDate.After(prev.ScoreDate) {
			return nil
		}
	}
	r.epssLoad[sc.CVE] = sc
	if sc.ScoreDate.After(s.sum.NewestModified) {
		s.sum.NewestModified = sc.ScoreDate
	}
	return nil
}

// writeEPSS writes the scores that differ from the stored ones. A stored
// score of a later day is kept: loading an old file never regresses it.
func (r *loadRun) writeEPSS(ctx context.Context) error {
	if len(r.epssLoad) == 0 {
		return nil
	}
	s := r.source(SourceEPSS)
	rows, err := r.l.Store.Query(ctx, queryCurrentEPSS)
	if err != nil {
		return fmt.Errorf("feeds: current epss: %w", err)
	}
	cur := map[string]epss.Score{}
	for rows.Next() {
		var c epss.Score
		if err := rows.Scan(&c.CVE, &c.EPSS, &c.Percentile, &c.ScoreDate, &c.ModelVersion); err != nil {
			rows.Close()
			return fmt.Errorf("feeds: current epss: %w", err)
		}
		if c.ScoreDate.Unix() <= 0 {
			c.ScoreDate = time.Time{}
		}
		cur[c.CVE] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("feeds: current epss: %w", err)
	}
	cves := make([]string, 0, len(r.epssLoad))
	for cve := range r.epssLoad {
		cves = append(cves, cve)
	}
	slices.Sort(cves)
	var out [][]any
	for _, cve := range cves {
		sc := r.epssLoad[cve]
		c, ok := cur[cve]
		switch {
		case ok && (c.ScoreDate.After(sc.ScoreDate) || math.Abs(c.EPSS-sc.EPSS) < 1e-9 && math.Abs(c.Percentile-sc.Percentile) < 1e-9 &&
			c.ScoreDate.Equal(sc.ScoreDate) && c.ModelVersion == sc.ModelVersion):
			s.sum.Unchanged++
			continue
		case ok:
			s.sum.Updated++
		default:
			s.sum.Loaded++
		}
		out = append(out, []any{sc.CVE, sc.EPSS, sc.Percentile, dateTime(sc.ScoreDate), sc.ModelVersion, r.now})
		if len(out) == epssBatch {
			if err := r.l.Store.Insert(ctx, "epss", epssColumns, out); err != nil {
				return fmt.Errorf("feeds: writing %d epss rows: %w", len(out), err)
			}
			out = out[:0]
		}
	}
	if err := r.l.Store.Insert(ctx, "epss", epssColumns, out); err != nil {
		return fmt.Errorf("feeds: writing %d epss rows: %w", len(out), err)
	}
	return nil
}

// finish writes one feed_loads row per source and logs the summaries.
func (r *loadRun) finish(ctx context.Context, loadErr error) ([]Summary, error) {
	fin := r.l.Now()
	var out []Summary
	var rows [][]any
	for _, name := range r.order {
		s := &r.sources[name].sum
		s.Finished = fin
		if loadErr != nil {
			s.Err = loadErr.Error()
		}
		out = append(out, *s)
		rows = append(rows, []any{s.Source, s.Location, dateTime(s.Started), dateTime(s.Finished), s.Records, s.Loaded, s.Updated, s.Unchanged, s.Withdrawn, s.Skipped, dateTime(s.NewestModified), s.Err})
		r.l.Log.Info("feeds: loaded", "source", s.Source, "location", s.Location, "records", s.Records, "loaded", s.Loaded,
			"updated", s.Updated, "unchanged", s.Unchanged, "withdrawn", s.Withdrawn, "skipped", s.Skipped, "ranges_skipped", s.RangesSkipped)
	}
	// The record of a failed load is written even when the load was
	// cancelled, so status can show it.
	wctx := context.WithoutCancel(ctx)
	if err := r.l.Store.Insert(wctx, "feed_loads", feedLoadColumns, rows); err != nil {
		err = fmt.Errorf("feeds: writing feed_loads: %w", err)
		if loadErr == nil {
			return out, err
		}
		r.l.Log.Error("feeds: writing feed_loads", "err", err)
	}
	return out, loadErr
}

var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
)

// dateTime clamps t to what a DateTime column holds (1970..2105); the zero
// time becomes the epoch, ClickHouse's "unset".
func dateTime(t time.Time) time.Time {
	switch {
	case t.Before(minDateTime):
		return minDateTime
	case t.After(maxDateTime):
		return maxDateTime
	}
	return t.UTC().Truncate(time.Second)
}
