package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// DueAction is an action automation may run now.
type DueAction struct {
	ActionID         string    `json:"action_id"`
	HostID           string    `json:"host_id"`
	Hostname         string    `json:"hostname"`
	Group            string    `json:"group"`
	Ecosystem        string    `json:"ecosystem"`
	Package          string    `json:"package"`
	TargetVersion    string    `json:"target_version"`
	Ring             string    `json:"ring"`
	Wave             uint32    `json:"wave"`
	Emergency        bool      `json:"emergency"`
	ApprovalRequired bool      `json:"approval_required"`
	State            State     `json:"state"`
	Attempt          uint32    `json:"attempt"` // the attempt to report: attempts so far + 1
	MaxAttempts      uint32    `json:"max_attempts"`
	WindowStart      time.Time `json:"window_start"`
	WindowEnd        time.Time `json:"window_end"`
	Why              string    `json:"why"`
}

// DueList is what may run now and, counted by reason, what may not.
type DueList struct {
	Actions []DueAction `json:"actions"`
	// NotDue counts the planned, in-progress and failed actions that may
	// not run now, by reason: gate_closed, held, window_not_open,
	// window_ended, attempts_exhausted, unscheduled, no_retry_window.
	NotDue map[string]uint64 `json:"not_due"`
}

// Reasons an action is not due (DueList.NotDue keys).
const (
	NotDueGate       = "gate_closed"
	NotDueHeld       = "held"
	NotDueWindow     = "window_not_open"
	NotDueEnded      = "window_ended"
	NotDueExhausted  = "attempts_exhausted"
	NotDueUnsched    = "unscheduled"
	NotDueNoRetrySlt = "no_retry_window"
)

// retrySearch is how far after a failure the next window of a group is
// looked for: five weeks hold every weekly window outside a long freeze.
const retrySearch = 35 * 24 * time.Hour

// candidate is an action that is not done (planned, in_progress or
// failed): it may be due. A candidate the store found outside its window
// (waiting: NotDueUnsched, NotDueWindow or NotDueEnded) stands for count
// such actions of one ring, fix and emergency flag: the gate and the
// holds still decide first which reason counts them, as for one action.
type candidate struct {
	DueAction
	planStatus string
	attempts   uint32
	finished   time.Time
	waiting    string
	count      uint64
}

// sqlActions evaluates a plan's action states once (action_states) and
// lets the store aggregate them: one row per ring and state with its count
// and latest finish, except for the actions that are not done (planned,
// in_progress, failed: the candidates). Of those, the failed ones, and the
// others whose window is open at the evaluation time, come one per row in
// rank order with what the due list needs; the others, outside their
// window or unscheduled, are counted per ring, fix, emergency flag and
// reason (dueList applies the gate and the holds to each such row as to
// one action). A 600,000-action plan's first window holds a few hundred
// actions: the store sends those, not every action of the plan (7 s and
// 2.6 GB of `make run`'s automation rounds, each).
//
// The window test is dueList's, in SQL: the evaluation time, bound to the
// second, against windows stored to the second, compares as the time
// itself does. The first parameter, false, turns the classification off
// (every candidate comes whole), which the differential test compares
// against.
const sqlActions = `SELECT ring, state, count(), max(finished_at),
	state IN %[1]s AS cand,
	multiIf(NOT (cand AND ?) OR state = ?, '',
		status = ?, ?,
		window_start > ?, ?,
		window_end <= ?, ?, '') AS waiting,
	if(cand AND waiting = '', action_id, '') AS candidate,
	if(cand, group_name, '') AS fix_group, if(cand, ecosystem, '') AS fix_ecosystem, if(cand, package, '') AS fix_package,
	if(cand, target_version, '') AS fix_version, if(cand, toUInt8(emergency), 0) AS is_emergency,
	any(host_id), any(hostname), any(wave), any(toUInt8(approval_required)), any(status), any(window_start), any(window_end),
	any(attempts), any(max_attempts), min(rank) AS first_rank
FROM action_states WHERE plan_id = ?
GROUP BY ring, state, cand, waiting, candidate, fix_group, fix_ecosystem, fix_package, fix_version, is_emergency
ORDER BY first_rank`

// readActions reads a plan's tally and due-list candidates at now
// (sqlActions); classify false reads every candidate whole.
func readActions(ctx context.Context, st store.Store, planID string, now time.Time, classify bool) (*tally, []candidate, error) {
	rows, err := st.Query(ctx, fmt.Sprintf(sqlActions, candidateStates),
		classify, string(Failed), plan.Unscheduled, NotDueUnsched, now, NotDueWindow, now, NotDueEnded, planID)
	if err != nil {
		return nil, nil, fmt.Errorf("plan %s: read action states: %w", planID, err)
	}
	defer rows.Close()
	t := newTally()
	var out []candidate
	for rows.Next() {
		var c candidate
		var n uint64
		var cand, emergency, approval uint8
		var state string
		var rank uint32
		a := &c.DueAction
		if err := rows.Scan(&a.Ring, &state, &n, &c.finished, &cand, &c.waiting, &a.ActionID, &a.Group, &a.Ecosystem, &a.Package, &a.TargetVersion,
			&emergency, &a.HostID, &a.Hostname, &a.Wave, &approval, &c.planStatus, &a.WindowStart, &a.WindowEnd,
			&c.attempts, &a.MaxAttempts, &rank); err != nil {
			return nil, nil, fmt.Errorf("plan %s: read action states: %w", planID, err)
		}
		s, err := ParseState(state)
		if err != nil {
			return nil, nil, fmt.Errorf("plan %s: action_states: %w", planID, err)
		}
		t.add(a.Ring, s, n, c.finished)
		if cand == 0 {
			continue
		}
		if !s.candidate() || (a.ActionID == "") == (c.waiting == "") || a.ActionID != "" && n != 1 {
			// A candidate row is one action, or a count of actions outside
			// their window: anything else means the SQL and this code
			// disagree on what a candidate is.
			return nil, nil, fmt.Errorf("plan %s: %d actions in state %s read as candidate %q waiting %q (not retryable)", planID, n, s, a.ActionID, c.waiting)
		}
		a.Emergency, a.ApprovalRequired, a.State, a.Attempt, c.count = emergency != 0, approval != 0, s, c.attempts+1, n
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("plan %s: read action states: %w", planID, err)
	}
	return t, out, nil
}

// candidate reports whether an action in state s may still be due: it has
// not run (planned, in_progress) or its latest attempt failed.
func (s State) candidate() bool { return s == Planned || s == InProgress || s == Failed }

// candidateStates is the SQL list of the candidate states.
var candidateStates = stateList(State.candidate)

// dueList decides for each candidate whether it may run now:
//   - its ring's gate is open (emergency actions: EmergencyOpen);
//   - its fix is not held for its group after a rollback;
//   - planned / in_progress: now is inside its window [window_start,
//     window_end); an unscheduled action never is;
//   - failed: attempts < max_attempts, and now is inside the retry window:
//     the group's first window that starts after the failed attempt
//     finished and is still open now (any time for a group without
//     windows, or an emergency that bypasses windows).
//
// A host that declared its own maintenance window (hostWindows, from the
// plan's plan_hosts) retries where that window overlaps its group's, as
// the planner placed its first attempt (plan.ParseHostWindow's rule).
func dueList(now time.Time, pol *policy.Policy, gates []Gate, holds []Hold, candidates []candidate, hostWindows map[string]policy.Window) *DueList {
	gate := map[string]Gate{}
	for _, g := range gates {
		gate[g.Ring] = g
	}
	held := map[Fix]bool{}
	for _, h := range holds {
		held[h.Fix] = true
	}
	groups := map[string]*policy.Group{}
	for i := range pol.Groups {
		groups[pol.Groups[i].Name] = &pol.Groups[i]
	}
	out := &DueList{Actions: []DueAction{}, NotDue: map[string]uint64{}}
	for _, c := range candidates {
		a := c.DueAction
		g := gate[gateRing(pol, a.Ring)]
		open := g.Open || (a.Emergency && g.EmergencyOpen)
		switch {
		case !open:
			out.NotDue[NotDueGate] += c.count
			continue
		case held[Fix{a.Group, a.Ecosystem, a.Package, a.TargetVersion}]:
			out.NotDue[NotDueHeld] += c.count
			continue
		case c.waiting != "":
			out.NotDue[c.waiting] += c.count
			continue
		}
		if a.State == Failed {
			if c.attempts >= a.MaxAttempts {
				out.NotDue[NotDueExhausted]++
				continue
			}
			var own *policy.Window
			if w, ok := hostWindows[a.HostID]; ok {
				own = &w
			}
			slot, ok := retrySlot(pol, groups[a.Group], own, a.Emergency, c.finished.UTC(), now)
			if !ok {
				out.NotDue[NotDueNoRetrySlt]++
				continue
			}
			if slot.Start.After(now) {
				out.NotDue[NotDueWindow]++
				continue
			}
			a.WindowStart, a.WindowEnd = slot.Start, slot.End
			a.Why = fmt.Sprintf("retry %d of %d: window %s..%s", a.Attempt, a.MaxAttempts,
				slot.Start.UTC().Format(time.RFC3339), slot.End.UTC().Format(time.RFC3339))
		} else {
			switch {
			case c.planStatus == plan.Unscheduled:
				out.NotDue[NotDueUnsched]++
				continue
			case now.Before(a.WindowStart):
				out.NotDue[NotDueWindow]++
				continue
			case !now.Before(a.WindowEnd):
				out.NotDue[NotDueEnded]++
				continue
			}
			a.Why = fmt.Sprintf("window %s..%s", a.WindowStart.UTC().Format(time.RFC3339), a.WindowEnd.UTC().Format(time.RFC3339))
		}
		if a.Emergency && !g.Open {
			a.Why += "; emergency: " + g.Reason
		}
		a.WindowStart, a.WindowEnd = a.WindowStart.UTC(), a.WindowEnd.UTC()
		out.Actions = append(out.Actions, a)
	}
	return out
}

// retrySlot is a failed action's retry window: the first window of its
// group (where own, the host's declared window, overlaps it, if the host
// declared one) that starts after the failure and is still open at now
// (or the next one after now).
func retrySlot(pol *policy.Policy, g *policy.Group, own *policy.Window, emergency bool, failed, now time.Time) (policy.Slot, bool) {
	o := policy.SlotOptions{}
	if emergency {
		o.IgnoreWindows = pol.Emergency.Bypasses(policy.BypassWindows)
		o.IgnoreFreezes = pol.Emergency.Bypasses(policy.BypassFreezes)
	}
	next := func(from time.Time) (policy.Slot, bool) {
		if own != nil {
			slot, _, ok := pol.NextSlotWithin(g, *own, from, from.Add(retrySearch), o)
			return slot, ok
		}
		slot, _, ok := pol.NextSlot(g, from, from.Add(retrySearch), o)
		return slot, ok
	}
	earliest := failed
	if now.After(earliest) {
		earliest = now
	}
	slot, ok := next(earliest)
	if ok && !slot.Start.After(failed) {
		// The window the attempt failed in: the retry waits for the next.
		slot, ok = next(slot.End)
	}
	return slot, ok
}

// readHostWindows reads the declared windows of the hosts of a plan's
// failed candidates (the only ones whose window is computed here; the
// planner placed the others). A window the planner could not read was
// never stored (plan_hosts.host_window is empty), so one that fails to parse
// here means the two disagree: an error, not "any time".
func readHostWindows(ctx context.Context, st store.Store, planID string, candidates []candidate) (map[string]policy.Window, error) {
	var hosts []string
	for _, c := range candidates {
		if c.State == Failed {
			hosts = append(hosts, c.HostID)
		}
	}
	if len(hosts) == 0 {
		return nil, nil
	}
	rows, err := st.Query(ctx, `SELECT host_id, any(host_window) FROM plan_hosts
		WHERE plan_id = ? AND host_window != '' AND host_id IN (SELECT arrayJoin(?))
		GROUP BY host_id`, planID, hosts)
	if err != nil {
		return nil, fmt.Errorf("plan %s: read host windows: %w", planID, err)
	}
	defer rows.Close()
	out := map[string]policy.Window{}
	for rows.Next() {
		var host, text string
		if err := rows.Scan(&host, &text); err != nil {
			return nil, fmt.Errorf("plan %s: read host windows: %w", planID, err)
		}
		w, err := plan.ParseHostWindow(text)
		if err != nil {
			return nil, fmt.Errorf("plan %s: host %s: stored window (not retryable): %w", planID, host, err)
		}
		out[host] = w
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan %s: read host windows: %w", planID, err)
	}
	return out, nil
}
