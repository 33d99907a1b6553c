// Package simulate publishes a simulated fleet: N endpoints built from real
// inventories, scanned once or more per day over a timeline in which fixes
// roll out ring by ring, some deployments fail and are retried or rolled
// back, and some hosts drift. Everything derives from one seed: the same
// Config and inputs give a byte-identical message stream, and the Fleet
// answers what every host had installed on every day (the ground truth
// analytics tests check their KPIs against: PackagesOn, VersionOn, HashOn,
// and each Endpoint's Meta).
//
// The model: endpoints start from real inventories (NewFleet). Upgrade
// paths (`apt list --upgradable` of a real host: installed = vulnerable,
// candidate = fixed) are grouped by source package into Waves released over
// the first two thirds of the timeline. Each host deploys a wave after a
// ring-dependent delay (test 0-1 days, pilot 2-5, prod 5-10 plus an
// exponential tail); a failed deployment is either retried 1-3 days later
// or installed and rolled back after 1-2 days (the packages regress to the
// vulnerable version) and redeployed 2-5 days after that. Drift removes one
// package out of band. A host's first scan of a day is a full scan when its
// list changed, otherwise a heartbeat carrying the previous hash.
package simulate

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// Rings in rollout order.
var Rings = []string{"test", "pilot", "prod"}

// Config shapes the fleet and its timeline. Zero values take the defaults
// in each field's comment.
type Config struct {
	Endpoints   int       // default 10000
	Days        int       // default 30
	ScansPerDay int       // default 1; scans after the first of a day are heartbeats
	Seed        uint64    // default 0 is a valid seed
	Start       time.Time // midnight UTC of day 0; default 2026-01-01 (a fixed date keeps streams reproducible)

	// Waves is how many fix releases the upgrade paths are split into,
	// released evenly over the first two thirds of the timeline. Default 4.
	Waves int
	// FailureRate is the chance that one host's deployment of one wave
	// fails. Default 0.05; negative means 0.
	FailureRate float64
	// RollbackShare is the share of failures that install and are rolled
	// back a day or two later (the packages regress to the vulnerable
	// version) rather than failing outright; both are retried later.
	// Default 0.4.
	RollbackShare float64
	// DriftRate is the chance per host and day that one package is removed
	// out of band. Default 0.002; negative means 0.
	DriftRate float64

	Logger *slog.Logger // default slog.Default()
}

func (c Config) withDefaults() Config {
	if c.Endpoints == 0 {
		c.Endpoints = 10000
	}
	if c.Days == 0 {
		c.Days = 30
	}
	if c.ScansPerDay == 0 {
		c.ScansPerDay = 1
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Waves == 0 {
		c.Waves = 4
	}
	if c.FailureRate == 0 {
		c.FailureRate = 0.05
	}
	if c.RollbackShare == 0 {
		c.RollbackShare = 0.4
	}
	if c.DriftRate == 0 {
		c.DriftRate = 0.002
	}
	c.FailureRate = max(c.FailureRate, 0)
	c.DriftRate = max(c.DriftRate, 0)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports an unusable configuration, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Endpoints < 0 || c.Days < 0 || c.ScansPerDay < 0 {
		errs = append(errs, errors.New("endpoints, days and scans per day must be >= 0"))
	}
	if c.Days > 1<<15 || c.ScansPerDay > 1440 {
		errs = append(errs, fmt.Errorf("days %d (max 32768) or scans per day %d (max 1440) out of range", c.Days, c.ScansPerDay))
	}
	if c.Waves < 0 || c.Waves > 64 {
		errs = append(errs, fmt.Errorf("waves %d out of range 1..64", c.Waves))
	}
	if c.FailureRate > 1 || c.RollbackShare < 0 || c.RollbackShare > 1 || c.DriftRate > 1 {
		errs = append(errs, errors.New("failure rate, rollback share and drift rate are probabilities"))
	}
	if !c.Start.Equal(c.Start.UTC().Truncate(24 * time.Hour)) {
		errs = append(errs, fmt.Errorf("start %s is not midnight UTC", c.Start))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("simulate config: %w", err)
	}
	return nil
}

// Base is one real inventory endpoints start from.
type Base struct {
	Name          string // where it was read from
	OS            inventory.OS
	KernelRunning string
	Packages      []inventory.Package
}

// Upgrade is one real upgrade path: hosts with Package at Vulnerable move to
// Fixed when the fix reaches them.
type Upgrade struct {
	Package    string
	Fixed      string // candidate version
	Vulnerable string // installed version
}

// Endpoint is one simulated host.
type Endpoint struct {
	Index    int
	HostID   string
	Hostname string
	Base     int // index into Fleet.Bases
	Meta     inventory.Meta
	// ScanOffset is when in its day slot the host scans.
	ScanOffset time.Duration

	waves []waveSchedule // per wave that touches this host's base
	drift []drift        // sorted by day
}

// waveSchedule says on which days a wave's fixes were on the host: applied
// from on[i] (inclusive) to off[i] (exclusive; -1 = still applied).
type waveSchedule struct {
	wave    int
	on, off [2]int16 // at most two application spans (a rollback then a redeploy)
	spans   int8
}

type drift struct {
	day int16
	pkg int32 // index into the base's packages
}

// baseUpgrade is an upgrade that applies to one package of one base.
type baseUpgrade struct {
	pkg  int // index into Base.Packages
	wave int
	up   int // index into Fleet.Upgrades
}

// Fleet is a simulated fleet with its whole timeline decided.
type Fleet struct {
	cfg       Config
	Bases     []Base
	Upgrades  []Upgrade
	Endpoints []Endpoint
	// WaveDay is the day each wave's fixes are released.
	WaveDay []int

	baseUps [][]baseUpgrade // per base
}

var (
	owners  = []string{"payments", "platform", "data", "identity", "web", "search", "billing", "infra"}
	roles   = []string{"web", "db", "cache", "batch", "api", "proxy", "worker", "build"}
	windows = []string{"Sun 02:00-04:00 UTC", "Sat 22:00-02:00 UTC", "Wed 01:00-03:00 UTC", "daily 03:00-04:00 UTC"}
)

// NewFleet decides every endpoint and its timeline. Only bases with an OS
// ecosystem are used; each base some upgrade path applies to is chosen as
// often as all other bases together, so most of the fleet exercises the
// patch flows.
func NewFleet(cfg Config, bases []Base, upgrades []Upgrade) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	f := &Fleet{cfg: cfg, Upgrades: upgrades}
	for _, b := range bases {
		if b.OS.Ecosystem != "" && len(b.Packages) > 0 {
			f.Bases = append(f.Bases, b)
		}
	}
	if len(f.Bases) == 0 {
		return nil, errors.New("simulate: no base inventory with an OS and packages")
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))

	// Waves group upgrades by the source package of the first base package
	// they apply to, so the binaries of one source fix together.
	f.WaveDay = make([]int, cfg.Waves)
	span := max(cfg.Days*2/3, 1)
	for w := range f.WaveDay {
		f.WaveDay[w] = 1 + w*span/max(cfg.Waves, 1)
	}
	upWave := make([]int, len(upgrades))
	sourceWave := map[string]int{}
	upSource := make([]string, len(upgrades))
	for _, b := range f.Bases {
		byNameVer := map[[2]string]*inventory.Package{}
		for i := range b.Packages {
			p := &b.Packages[i]
			byNameVer[[2]string{p.Name, p.Version}] = p
		}
		for u, up := range upgrades {
			if p := byNameVer[[2]string{up.Package, up.Vulnerable}]; p != nil && upSource[u] == "" {
				upSource[u] = p.MatchName()
			}
		}
	}
	for u := range upgrades {
		src := upSource[u]
		if src == "" {
			src = upgrades[u].Package
		}
		w, ok := sourceWave[src]
		if !ok {
			w = rng.IntN(max(cfg.Waves, 1))
			sourceWave[src] = w
		}
		upWave[u] = w
	}
	weights := make([]int, len(f.Bases))
	total := 0
	f.baseUps = make([][]baseUpgrade, len(f.Bases))
	for bi, b := range f.Bases {
		for pi := range b.Packages {
			p := &b.Packages[pi]
			for u, up := range upgrades {
				if p.Name == up.Package && p.Version == up.Vulnerable {
					f.baseUps[bi] = append(f.baseUps[bi], baseUpgrade{pkg: pi, wave: upWave[u], up: u})
				}
			}
		}
	}
	others := 0
	for bi := range f.Bases {
		if len(f.baseUps[bi]) == 0 {
			others++
		}
	}
	for bi := range f.Bases {
		weights[bi] = 1
		if len(f.baseUps[bi]) > 0 {
			weights[bi] = max(others, 1)
		}
		total += weights[bi]
	}

	f.Endpoints = make([]Endpoint, cfg.Endpoints)
	slot := 24 * time.Hour / time.Duration(cfg.ScansPerDay)
	for i := range f.Endpoints {
		e := &f.Endpoints[i]
		e.Index = i
		e.HostID = fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
		pick := rng.IntN(total)
		for bi, w := range weights {
			if pick < w {
				e.Base = bi
				break
			}
			pick -= w
		}
		ring := pickRing(rng)
		role := roles[rng.IntN(len(roles))]
		e.Hostname = fmt.Sprintf("%s-%s-%06d", ring, role, i)
		e.Meta = inventory.Meta{
			Owner:             owners[rng.IntN(len(owners))],
			Ring:              ring,
			Criticality:       uint8(1 + rng.IntN(4)),
			InternetFacing:    rng.IntN(5) == 0,
			Tags:              []string{"role:" + role, "sim"},
			MaintenanceWindow: windows[rng.IntN(len(windows))],
		}
		e.ScanOffset = time.Duration(rng.Int64N(int64(slot/time.Second))) * time.Second
		f.schedule(rng, e)
	}
	return f, nil
}

// pickRing: 5% test, 15% pilot, 80% prod.
func pickRing(rng *rand.Rand) string {
	switch n := rng.IntN(100); {
	case n < 5:
		return "test"
	case n < 20:
		return "pilot"
	default:
		return "prod"
	}
}

// deployDelay draws how many days after a release a ring deploys it.
func deployDelay(rng *rand.Rand, ring string) int {
	switch ring {
	case "test":
		return rng.IntN(2) // 0-1
	case "pilot":
		return 2 + rng.IntN(4) // 2-5
	default:
		return 5 + rng.IntN(6) + int(rng.ExpFloat64()*2) // 5-10 plus a tail
	}
}

func (f *Fleet) schedule(rng *rand.Rand, e *Endpoint) {
	cfg := f.cfg
	seen := uint64(0)
	for _, bu := range f.baseUps[e.Base] {
		if seen&(1<<bu.wave) != 0 {
			continue
		}
		seen |= 1 << bu.wave
		ws := waveSchedule{wave: bu.wave, on: [2]int16{-1, -1}, off: [2]int16{-1, -1}}
		day := f.WaveDay[bu.wave] + deployDelay(rng, e.Meta.Ring)
		if rng.Float64() < cfg.FailureRate {
			if rng.Float64() < cfg.RollbackShare {
				// Installed, then rolled back: a regression to the old version.
				back := day + 1 + rng.IntN(2)
				ws.on[0], ws.off[0] = int16(day), int16(back)
				ws.spans = 1
				day = back + 2 + rng.IntN(4)
			} else {
				day += 1 + rng.IntN(3) // failed outright, retried
			}
		}
		ws.on[ws.spans] = int16(day)
		ws.spans++
		e.waves = append(e.waves, ws)
	}
	nPkgs := len(f.Bases[e.Base].Packages)
	for d := 1; d < cfg.Days; d++ {
		if cfg.DriftRate > 0 && rng.Float64() < cfg.DriftRate {
			e.drift = append(e.drift, drift{day: int16(d), pkg: int32(rng.IntN(nPkgs))})
		}
	}
}

// applied reports whether wave w's fixes are on e on day d.
func (e *Endpoint) applied(w, d int) bool {
	for _, ws := range e.waves {
		if ws.wave != w {
			continue
		}
		for i := 0; i < int(ws.spans); i++ {
			if d >= int(ws.on[i]) && (ws.off[i] < 0 || d < int(ws.off[i])) {
				return true
			}
		}
	}
	return false
}

// state is what decides a host's package list on a day.
type state struct {
	base    int
	applied uint64 // bit w: wave w applied
	removed []int32
}

func (s state) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%x", s.base, s.applied)
	for _, r := range s.removed {
		fmt.Fprintf(&b, "/%d", r)
	}
	return b.String()
}

func (f *Fleet) stateOn(e *Endpoint, d int) state {
	s := state{base: e.Base}
	for _, ws := range e.waves {
		if e.applied(ws.wave, d) {
			s.applied |= 1 << ws.wave
		}
	}
	for _, dr := range e.drift {
		if int(dr.day) <= d {
			s.removed = append(s.removed, dr.pkg)
		}
	}
	return s
}

// PackagesOn returns the packages host i had installed on day d: the
// simulated ground truth.
func (f *Fleet) PackagesOn(i, d int) []inventory.Package {
	return f.packages(f.stateOn(&f.Endpoints[i], d))
}

func (f *Fleet) packages(s state) []inventory.Package {
	b := &f.Bases[s.base]
	pkgs := make([]inventory.Package, len(b.Packages))
	copy(pkgs, b.Packages)
	for _, bu := range f.baseUps[s.base] {
		if s.applied&(1<<bu.wave) != 0 {
			upgradePackage(&pkgs[bu.pkg], f.Upgrades[bu.up].Fixed)
		}
	}
	if len(s.removed) == 0 {
		return pkgs
	}
	drop := map[int32]bool{}
	for _, r := range s.removed {
		drop[r] = true
	}
	kept := pkgs[:0]
	for i := range pkgs {
		if !drop[int32(i)] {
			kept = append(kept, pkgs[i])
		}
	}
	return kept
}

// upgradePackage moves p to version v. The source version follows when it
// was the binary's own version; a binNMU binary (1.2-3+b1 built from source
// 1.2-3) gets the new version without its +bN suffix.
func upgradePackage(p *inventory.Package, v string) {
	old := p.Version
	p.Version = v
	if p.SourceVersion != "" {
		p.SourceVersion = stripBinNMU(v)
	}
	if p.PURL != "" {
		p.PURL = strings.Replace(p.PURL, "@"+old, "@"+v, 1)
		p.PURL = strings.Replace(p.PURL, "@"+strings.ReplaceAll(old, "+", "%2B"), "@"+strings.ReplaceAll(v, "+", "%2B"), 1)
	}
}

func stripBinNMU(v string) string {
	i := strings.LastIndex(v, "+b")
	if i < 0 || i+2 == len(v) {
		return v
	}
	for _, c := range v[i+2:] {
		if c < '0' || c > '9' {
			return v
		}
	}
	return v[:i]
}

// VersionOn returns the version of the first package named name on host i
// on day d, and whether it was installed.
func (f *Fleet) VersionOn(i, d int, name string) (string, bool) {
	for _, p := range f.PackagesOn(i, d) {
		if p.Name == name {
			return p.Version, true
		}
	}
	return "", false
}

// HashOn is the inventory hash host i reported for day d: its package
// list's HashPackages, which scans and heartbeats of that day carry.
func (f *Fleet) HashOn(i, d int) string {
	return inventory.HashPackages(f.PackagesOn(i, d))
}

// Day is the timeline day a scan time falls on (Start is day 0).
func (f *Fleet) Day(t time.Time) int {
	return int(t.Sub(f.cfg.Start) / (24 * time.Hour))
}
