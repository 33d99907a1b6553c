package deploy

import (
	"fmt"
	"time"

	"github.com/patchgrid/patchgrid/analytics/policy"
)

// RingStats is what one ring's actions in one plan have done so far.
type RingStats struct {
	Ring        string    `json:"ring"`
	Actions     uint64    `json:"actions"`
	Successes   uint64    `json:"successes"`    // State.Success
	Failures    uint64    `json:"failures"`     // State.Failure
	LastSuccess time.Time `json:"last_success"` // finished_at of the latest success (zero: none)
}

// FailureRate is failures / (successes + failures): the share of the
// ring's actions with an outcome that failed (0 when none has one).
func (s RingStats) FailureRate() float64 {
	if n := s.Successes + s.Failures; n > 0 {
		return float64(s.Failures) / float64(n)
	}
	return 0
}

// Gate is whether one ring's waves may open, and why, with the numbers.
type Gate struct {
	Ring      string `json:"ring"`
	RingIndex int    `json:"ring_index"`
	// Open: the ring's normal waves may run.
	Open bool `json:"open"`
	// EmergencyOpen: its emergency actions may run (the soak condition is
	// skipped when the policy's emergency path bypasses soak).
	EmergencyOpen bool   `json:"emergency_open"`
	Reason        string `json:"reason"`
	// The previous ring's figures against its gate ("" for the first ring).
	PrevRing       string        `json:"prev_ring,omitempty"`
	Prev           RingStats     `json:"prev"`
	FailureRate    float64       `json:"failure_rate"`
	Soak           time.Duration `json:"soak_ns"` // since Prev.LastSuccess (0: no success yet)
	MinSoak        time.Duration `json:"min_soak_ns"`
	MaxFailureRate float64       `json:"max_failure_rate"`
	MinSuccesses   uint32        `json:"min_successes"`
}

// Gates decides each ring's gate from the plan's ring statistics, in the
// policy's ring order. The first ring is always open. Ring R (after P)
// opens when P is open and P's gate holds:
//   - successes of P >= P.min_successes,
//   - P's failure rate <= P.max_failure_rate,
//   - soak: now - P's last success >= P.min_soak (with no success yet the
//     soak has not started, so a min_soak > 0 does not hold).
//
// A ring with no actions in the plan has nothing to gate on: the gate
// after it passes on what held before it (the reason says so), so an empty
// test ring neither blocks production forever nor lets a failing earlier
// ring through. Hosts of rings the policy does not name come last (as the
// planner orders them, policy.RingIndex) under the ring "" entry, gated by
// the last named ring. Without rings there is one ring, always open.
func Gates(pol *policy.Policy, stats map[string]RingStats, now time.Time) []Gate {
	rings := make([]string, 0, len(pol.Rings)+1)
	for _, r := range pol.Rings {
		rings = append(rings, r.Name)
	}
	// Actions in rings the policy does not name go after the named ones.
	var unnamed RingStats
	var unnamedRings []string
	for name, s := range stats {
		if _, known := pol.RingIndex(name); !known || len(pol.Rings) == 0 {
			unnamed.Actions += s.Actions
			unnamed.Successes += s.Successes
			unnamed.Failures += s.Failures
			if s.LastSuccess.After(unnamed.LastSuccess) {
				unnamed.LastSuccess = s.LastSuccess
			}
			unnamedRings = append(unnamedRings, name)
		}
	}
	if len(unnamedRings) > 0 || len(rings) == 0 {
		rings = append(rings, OtherRings)
		unnamed.Ring = OtherRings
	}
	soakBypass := pol.Emergency.Bypasses(policy.BypassSoak)
	out := make([]Gate, 0, len(rings))
	prevOpen, prevEmergencyOpen := true, true
	carry := "" // why the previous gate held, when passed through empty rings
	for i, name := range rings {
		g := Gate{Ring: name, RingIndex: i}
		if i == 0 {
			g.Open, g.EmergencyOpen, g.Reason = true, true, "first ring: always open"
			out = append(out, g)
			continue
		}
		prev := rings[i-1]
		ps := stats[prev]
		if prev == OtherRings {
			ps = unnamed
		}
		ps.Ring = prev
		gate := policy.Gate{MaxFailureRate: 1}
		if i-1 < len(pol.Rings) {
			gate = pol.Rings[i-1].Gate
		}
		g.PrevRing, g.Prev, g.FailureRate = prev, ps, ps.FailureRate()
		g.MinSoak, g.MaxFailureRate, g.MinSuccesses = time.Duration(gate.MinSoak), gate.MaxFailureRate, gate.MinSuccesses
		if !ps.LastSuccess.IsZero() && now.After(ps.LastSuccess) {
			g.Soak = now.Sub(ps.LastSuccess)
		}
		if ps.Actions == 0 {
			// Nothing ran in the previous ring: its gate has no evidence
			// either way, so it passes on what held before it.
			g.Open, g.EmergencyOpen = prevOpen, prevEmergencyOpen
			g.Reason = fmt.Sprintf("ring %s has no actions in this plan: its gate does not apply", prev)
			if !prevOpen {
				g.Reason += "; ring " + prev + " itself is not open (" + carry + ")"
			}
			out = append(out, g)
			continue
		}
		var why []string
		successesHold := uint64(gate.MinSuccesses) <= ps.Successes
		if !successesHold {
			why = append(why, fmt.Sprintf("%d successes in ring %s, %d required", ps.Successes, prev, gate.MinSuccesses))
		}
		rateHolds := g.FailureRate <= gate.MaxFailureRate
		if !rateHolds {
			why = append(why, fmt.Sprintf("failure rate %.3f (%d of %d) in ring %s above the maximum %.3f",
				g.FailureRate, ps.Failures, ps.Successes+ps.Failures, prev, gate.MaxFailureRate))
		}
		soakHolds := g.MinSoak == 0 || (!ps.LastSuccess.IsZero() && g.Soak >= g.MinSoak)
		switch {
		case soakHolds:
		case ps.LastSuccess.IsZero():
			why = append(why, fmt.Sprintf("soak not started: no success in ring %s yet (min soak %s)", prev, g.MinSoak))
		default:
			why = append(why, fmt.Sprintf("soak %s since ring %s's last success at %s, min %s (holds from %s)", g.Soak.Round(time.Minute),
				prev, ps.LastSuccess.UTC().Format(time.RFC3339), g.MinSoak, ps.LastSuccess.Add(g.MinSoak).UTC().Format(time.RFC3339)))
		}
		if !prevOpen {
			why = append(why, "ring "+prev+" itself is not open")
		}
		g.Open = prevOpen && successesHold && rateHolds && soakHolds
		// Emergency actions skip only the soak condition, and only when
		// the policy's emergency path bypasses soak.
		g.EmergencyOpen = g.Open || (soakBypass && prevEmergencyOpen && successesHold && rateHolds)
		if g.Open {
			g.Reason = fmt.Sprintf("ring %s: %d successes (min %d), failure rate %.3f (max %.3f), soak %s (min %s)",
				prev, ps.Successes, gate.MinSuccesses, g.FailureRate, gate.MaxFailureRate, g.Soak.Round(time.Minute), g.MinSoak)
		} else {
			g.Reason = joinReasons(why)
			if g.EmergencyOpen {
				g.Reason += "; emergency actions bypass soak"
			}
		}
		prevOpen, prevEmergencyOpen, carry = g.Open, g.EmergencyOpen, g.Reason
		out = append(out, g)
	}
	return out
}

// OtherRings names the hosts in rings the policy does not name (or every
// host when it names none): they come last.
const OtherRings = "(other)"

func joinReasons(why []string) string {
	s := ""
	for i, w := range why {
		if i > 0 {
			s += "; "
		}
		s += w
	}
	return s
}
