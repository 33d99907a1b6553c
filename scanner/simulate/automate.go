package simulate

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"slices"
	"time"

	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// PlannedAction is one action of a remediation plan that is due, as
// automation reads it: upgrade Package to TargetVersion on HostID.
type PlannedAction struct {
	PlanID, ActionID, HostID string
	Package, TargetVersion   string
	Ring                     string
	Wave                     uint32
	// Attempt is the attempt to report (1 when zero): a failed action is
	// retried as attempt 2, ...
	Attempt uint32
}

// Automation is what Fleet.Automate did: the outcomes it reported and the
// rescans it made, in the order automation would send them (a host's
// outcomes, then its rescan). Hosts of the plan that are not in the fleet
// (the local machine of `patchgrid run`) are left alone and counted.
type Automation struct {
	Outcomes []outcome.Outcome
	Rescans  []inventory.Scan
	// Foreign counts actions on hosts the fleet does not simulate.
	Foreign int
}

// kernelImage matches the kernel packages whose upgrade takes effect only
// after a reboot: Debian's linux-image-*, the rpm kernel packages, Alpine's
// linux-* flavours (the names patchgrid_kernel_state recognises).
var kernelImage = regexp.MustCompile(`^(linux-image-[0-9].*|kernel|kernel-core|linux-(lts|virt|edge|rpi|rpi2|rpi4))$`)

// Automate plays remediation automation for actions, the plan actions due
// now: each host of the fleet deploys its actions together at or after at,
// as the timeline deploys a wave, with the fleet's failure rate and
// rollback share. A failed deployment installs nothing; a rolled-back one
// installed the targets and went back to the installed versions; either way
// the host keeps its vulnerable versions, as in Run's timeline. Every host
// is then rescanned with a full scan: succeeded actions show their target
// version. The host's rescan comes after its last simulated scan (day Days-1
// at the host's scan offset), so exposure history never sees the old list
// come back after the patch.
//
// Every attempt is the action's first (attempt 1); a kernel image reports
// reboot_required, and the simulated host does not reboot. Decisions derive
// from the seed, the plan and the host id only: the same plan gives the same
// outcomes whatever the order of actions.
func (f *Fleet) Automate(ctx context.Context, actions []PlannedAction, at time.Time) (Automation, error) {
	return (&Automator{Fleet: f}).Automate(ctx, actions, at)
}

// Automator plays automation on a fleet round after round (one window, then
// a later one): it remembers each host's packages as of its last rescan, so
// a host deployed to again keeps what an earlier round installed.
type Automator struct {
	Fleet     *Fleet
	installed map[int][]inventory.Package // by endpoint index
}

// Automate is Fleet.Automate for one round; at must not be before the
// previous round's last rescan.
func (am *Automator) Automate(ctx context.Context, actions []PlannedAction, at time.Time) (Automation, error) {
	f := am.Fleet
	if am.installed == nil {
		am.installed = map[int][]inventory.Package{}
	}
	var res Automation
	index := make(map[string]int, len(f.Endpoints))
	for i := range f.Endpoints {
		index[f.Endpoints[i].HostID] = i
	}
	byHost := map[int][]PlannedAction{}
	var hosts []int
	for _, a := range actions {
		i, ok := index[a.HostID]
		if !ok {
			res.Foreign++
			continue
		}
		if a.PlanID == "" || a.ActionID == "" || a.Package == "" || a.TargetVersion == "" {
			return res, fmt.Errorf("simulate automation: action %q of plan %q on host %s: plan, action, package and target version are required", a.ActionID, a.PlanID, a.HostID)
		}
		if _, seen := byHost[i]; !seen {
			hosts = append(hosts, i)
		}
		byHost[i] = append(byHost[i], a)
	}
	slices.Sort(hosts)
	at = at.UTC().Truncate(time.Second)
	lastDay := f.cfg.Days - 1
	slot := 24 * time.Hour / time.Duration(f.cfg.ScansPerDay)
	for _, i := range hosts {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		e := &f.Endpoints[i]
		acts := byHost[i]
		slices.SortFunc(acts, func(x, y PlannedAction) int { return cmp.Compare(x.ActionID, y.ActionID) })
		// A retry is a new deployment: its own draw.
		attempt := uint32(1)
		for _, a := range acts {
			attempt = max(attempt, a.Attempt)
		}
		rng := rand.New(rand.NewPCG(f.cfg.Seed, hostSeed(acts[0].PlanID, e.HostID, attempt)))
		status := outcome.Succeeded
		if rng.Float64() < f.cfg.FailureRate {
			status = outcome.Failed
			if rng.Float64() < f.cfg.RollbackShare {
				status = outcome.RolledBack
			}
		}
		// After the host's last simulated scan: its list of that day
		// would otherwise follow the rescan and undo the patch.
		lastScan := f.cfg.Start.Add(time.Duration(lastDay)*24*time.Hour + time.Duration(f.cfg.ScansPerDay-1)*slot + e.ScanOffset)
		start := at
		if !lastScan.Before(start) {
			start = lastScan.Add(time.Minute)
		}
		start = start.Add(time.Duration(rng.IntN(30*60)) * time.Second)
		t := start
		pkgs, ok := am.installed[i]
		if !ok {
			pkgs = f.PackagesOn(i, lastDay)
		} else {
			pkgs = slices.Clone(pkgs)
		}
		for _, a := range acts {
			took := time.Duration(20+rng.IntN(100)) * time.Second
			o := outcome.Outcome{
				SchemaVersion: outcome.Version, PlanID: a.PlanID, ActionID: a.ActionID, HostID: a.HostID,
				Package: a.Package, ToVersion: a.TargetVersion,
				Status: status, Attempt: max(a.Attempt, 1), StartedAt: t, FinishedAt: t.Add(took),
				RebootRequired: kernelImage.MatchString(a.Package),
			}
			// Every installed package of that name (one per arch).
			var installed []int
			for k := range pkgs {
				if pkgs[k].Name == a.Package {
					installed = append(installed, k)
				}
			}
			if len(installed) > 0 {
				o.FromVersion = pkgs[installed[0]].Version
			}
			switch {
			case len(installed) == 0:
				// The plan read another list than the fleet holds: a
				// success would be a lie the rescan contradicts.
				o.Status, o.Error = outcome.Skipped, "simulated: the package is not installed"
			case status == outcome.Failed:
				o.Error = "simulated: the package manager failed (exit status 100); nothing was installed"
			case status == outcome.RolledBack:
				o.Error = fmt.Sprintf("simulated: health check failed after installing %s; rolled back to %s", a.TargetVersion, o.FromVersion)
			default:
				for _, k := range installed {
					upgradePackage(&pkgs[k], a.TargetVersion)
				}
			}
			if err := o.Validate(); err != nil {
				return res, fmt.Errorf("simulate automation: action %s on host %s: %w", a.ActionID, a.HostID, err)
			}
			res.Outcomes = append(res.Outcomes, o)
			t = o.FinishedAt.Add(10 * time.Second)
		}
		b := &f.Bases[e.Base]
		s := inventory.Scan{
			HostID:        e.HostID,
			ScanID:        fmt.Sprintf("%s-rescan-%s-%d", e.HostID, acts[0].PlanID, t.Unix()),
			ScannedAt:     t.Add(5 * time.Minute),
			Hostname:      e.Hostname,
			OS:            b.OS,
			KernelRunning: b.KernelRunning,
			Meta:          e.Meta,
			Packages:      pkgs,
			InventoryHash: inventory.HashPackages(pkgs),
		}
		if b.KernelRunning != "" {
			s.KernelsInstalled = []string{b.KernelRunning}
		}
		res.Rescans = append(res.Rescans, s)
		am.installed[i] = pkgs
	}
	return res, nil
}

// FailureRate is the chance that one host's deployment fails (Config's,
// after defaults); Automate and the timeline both use it.
func (f *Fleet) FailureRate() float64 { return f.cfg.FailureRate }

// RollbackShare is the share of failures that are rollbacks.
func (f *Fleet) RollbackShare() float64 { return f.cfg.RollbackShare }

// hostSeed mixes the plan, the host and the attempt into the second PCG
// seed word.
func hostSeed(planID, hostID string, attempt uint32) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(planID)) // hash.Hash writes never fail
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(hostID))
	_, _ = h.Write([]byte{0, byte(attempt), byte(attempt >> 8), byte(attempt >> 16), byte(attempt >> 24)})
	return h.Sum64()
}
