package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Fix names one fix for one group: what a rollback makes suspect.
type Fix struct {
	Group         string `json:"group"`
	Ecosystem     string `json:"ecosystem"`
	Package       string `json:"package"`
	TargetVersion string `json:"target_version"`
}

func (f Fix) String() string {
	return fmt.Sprintf("%s %s (%s) for group %s", f.Package, f.TargetVersion, f.Ecosystem, f.Group)
}

func (f Fix) object() string {
	return "fix:" + f.Group + "/" + f.Ecosystem + "/" + f.Package + "@" + f.TargetVersion
}

// Hold is a fix held after a rollback (fix_holds_current).
type Hold struct {
	Fix
	HeldAt    time.Time `json:"held_at"` // when the latest rollback was recorded
	Reason    string    `json:"reason"`
	PlanID    string    `json:"plan_id"`
	ActionID  string    `json:"action_id"`
	Rollbacks uint64    `json:"rollbacks"`
}

// SyncHolds records a hold in fix_holds for every rolled-back attempt not
// recorded yet (any plan), at cfg.Now, and one audit entry (fix.hold)
// naming the fixes that were not already held. It returns the fixes newly held. Recording twice
// has no second effect: rollbacks already in fix_holds are skipped.
// plan_actions is read only for the rolled-back actions: joined whole, every
// action of every plan went into the join's hash table (0.25 s of each
// status evaluation of a 600,000-action plan, against 0.05 s).
func SyncHolds(ctx context.Context, cfg Config) ([]Fix, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	rows, err := cfg.Store.Query(ctx, `SELECT a.group_name, a.ecosystem, a.package, a.target_version,
		o.finished_at, o.plan_id, o.action_id, o.attempt, o.error
	FROM (SELECT plan_id, action_id, attempt, finished_at, error FROM outcomes FINAL WHERE status = 'rolled_back') AS o
	INNER JOIN (SELECT plan_id, action_id, group_name, ecosystem, package, target_version FROM plan_actions
		WHERE (plan_id, action_id) IN (SELECT plan_id, action_id FROM outcomes WHERE status = 'rolled_back')) AS a
		ON a.plan_id = o.plan_id AND a.action_id = o.action_id
	WHERE (o.plan_id, o.action_id, o.attempt) NOT IN (SELECT plan_id, action_id, attempt FROM fix_holds WHERE event = 'hold')
	ORDER BY o.finished_at`)
	if err != nil {
		return nil, fmt.Errorf("deploy: read rollbacks: %w", err)
	}
	var ins [][]any
	first := map[Fix]string{}
	var order []Fix
	for rows.Next() {
		var f Fix
		var at time.Time
		var planID, actionID, errText string
		var attempt uint32
		if err := rows.Scan(&f.Group, &f.Ecosystem, &f.Package, &f.TargetVersion, &at, &planID, &actionID, &attempt, &errText); err != nil {
			rows.Close()
			return nil, fmt.Errorf("deploy: read rollbacks: %w", err)
		}
		reason := fmt.Sprintf("rolled back on %s (plan %s, action %s, attempt %d): %s", at.UTC().Format(time.RFC3339), planID, actionID, attempt, errText)
		ins = append(ins, []any{f.Group, f.Ecosystem, f.Package, f.TargetVersion, "hold", cfg.Now, cfg.Actor, reason, planID, actionID, attempt})
		if _, ok := first[f]; !ok {
			first[f] = reason
			order = append(order, f)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("deploy: read rollbacks: %w", err)
	}
	if len(ins) == 0 {
		return nil, nil
	}
	held, err := Holds(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	already := map[Fix]bool{}
	for _, h := range held {
		already[h.Fix] = true
	}
	if err := cfg.Store.Insert(ctx, "fix_holds", holdColumns, ins); err != nil {
		return nil, fmt.Errorf("deploy: record %d rollback holds: %w", len(ins), err)
	}
	var newly []Fix
	var names []string
	for _, f := range order {
		if !already[f] {
			newly = append(newly, f)
			names = append(names, f.String())
		}
	}
	if len(newly) == 0 {
		return nil, nil
	}
	// One entry for the fixes this evaluation held: the trail proves the
	// whole list (its digest) without an append per fix, which a fleet
	// with hundreds of rolled-back fixes could not afford.
	detail := fmt.Sprintf("%d fix(es) held after a rollback: %s", len(newly), strings.Join(names, "; "))
	if len(newly) == 1 {
		detail = newly[0].String() + " held: " + first[newly[0]]
	}
	object := newly[0].object()
	if len(newly) > 1 {
		object = fmt.Sprintf("fixes:%d", len(newly))
	}
	if _, err := cfg.Audit.Append(ctx, audit.Event{Actor: cfg.Actor, Action: "fix.hold", Object: object, After: newly,
		Detail: truncate(detail, 4000), At: cfg.Now}); err != nil {
		return nil, fmt.Errorf("deploy: holds of %d fix(es) are recorded, but their audit entry failed: %w", len(newly), err)
	}
	for _, f := range newly {
		cfg.Log.Warn("fix held after a rollback", "fix", f.String(), "reason", first[f])
	}
	return newly, nil
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

var holdColumns = []string{"group_name", "ecosystem", "package", "target_version", "event", "at", "actor", "reason", "plan_id", "action_id", "attempt"}

// Holds lists the holds in force, oldest first.
func Holds(ctx context.Context, st store.Store) ([]Hold, error) {
	rows, err := st.Query(ctx, `SELECT group_name, ecosystem, package, target_version, held_at, reason, plan_id, action_id, rollbacks
		FROM fix_holds_current ORDER BY held_at, group_name, ecosystem, package, target_version`)
	if err != nil {
		return nil, fmt.Errorf("deploy: read fix holds: %w", err)
	}
	defer rows.Close()
	out := []Hold{}
	for rows.Next() {
		var h Hold
		if err := rows.Scan(&h.Group, &h.Ecosystem, &h.Package, &h.TargetVersion, &h.HeldAt, &h.Reason, &h.PlanID, &h.ActionID, &h.Rollbacks); err != nil {
			return nil, fmt.Errorf("deploy: read fix holds: %w", err)
		}
		h.HeldAt = h.HeldAt.UTC()
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("deploy: read fix holds: %w", err)
	}
	return out, nil
}

// ApproveRequest lifts holds: every fix in force of Package at Version,
// narrowed by Ecosystem and Group when given.
type ApproveRequest struct {
	Package, Version string
	Ecosystem, Group string // optional
	Approver         string // required: who takes the decision
	Reason           string
}

// ErrNoHold: nothing held matches an approval (not retryable).
var ErrNoHold = errors.New("no hold in force matches")

// Approve records an approval for every held fix the request names
// (fix_holds event 'approve', and fix.approve in the audit trail), so
// their further waves run again. Rollbacks not recorded yet are recorded
// first, so the approval covers every rollback reported so far; a later
// rollback holds the fix again.
func Approve(ctx context.Context, cfg Config, req ApproveRequest) ([]Hold, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	req.Approver = strings.TrimSpace(req.Approver)
	if req.Approver == "" {
		return nil, errors.New("approve: an approver is required (--approver WHO; not retryable)")
	}
	if req.Package == "" || req.Version == "" {
		return nil, errors.New("approve: --package and --version name the fix (not retryable)")
	}
	if _, err := SyncHolds(ctx, cfg); err != nil {
		return nil, err
	}
	held, err := Holds(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	var match []Hold
	for _, h := range held {
		if h.Package == req.Package && h.TargetVersion == req.Version &&
			(req.Ecosystem == "" || h.Ecosystem == req.Ecosystem) && (req.Group == "" || h.Group == req.Group) {
			match = append(match, h)
		}
	}
	if len(match) == 0 {
		what := req.Package + " " + req.Version
		if req.Ecosystem != "" {
			what += " (" + req.Ecosystem + ")"
		}
		if req.Group != "" {
			what += " for group " + req.Group
		}
		return nil, fmt.Errorf("approve %s: %w (holds in force: %d)", what, ErrNoHold, len(held))
	}
	reason := req.Reason
	if reason == "" {
		reason = "approved"
	}
	rows := make([][]any, 0, len(match))
	for _, h := range match {
		// Holds recorded up to this second (SyncHolds above uses the same
		// clock) are lifted; later ones hold again.
		rows = append(rows, []any{h.Group, h.Ecosystem, h.Package, h.TargetVersion, "approve", cfg.Now, req.Approver, reason, "", "", uint32(0)})
	}
	if err := cfg.Store.Insert(ctx, "fix_holds", holdColumns, rows); err != nil {
		return nil, fmt.Errorf("approve %s %s: %w", req.Package, req.Version, err)
	}
	for _, h := range match {
		if _, err := cfg.Audit.Append(ctx, audit.Event{Actor: req.Approver, Action: "fix.approve", Object: h.object(),
			Before: h, After: map[string]any{"fix": h.Fix, "approved_by": req.Approver, "reason": reason},
			Detail: fmt.Sprintf("%s approved by %s after %d rollback(s): %s", h.Fix, req.Approver, h.Rollbacks, reason), At: cfg.Now}); err != nil {
			return nil, fmt.Errorf("approval of %s is recorded, but its audit entry failed: %w", h.Fix, err)
		}
	}
	return match, nil
}
