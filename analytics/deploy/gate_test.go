package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/deploy"
	"github.com/patchgrid/patchgrid/analytics/policy"
)

func mustPolicy(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every gate rule, worked by hand on fixturePolicy's rings: test (soak
// 24h, max failure rate 0.5, min 2 successes) → pilot (48h, 0.1, 1) → prod.
func TestGateRules(t *testing.T) {
	pol := mustPolicy(t, fixturePolicy)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	type want struct {
		open, emergency bool
		reason          string
	}
	cases := []struct {
		name  string
		stats map[string]deploy.RingStats
		want  map[string]want // by ring
	}{
		{
			name:  "nothing ran yet: test open, pilot waits for successes and soak, prod waits for pilot",
			stats: map[string]deploy.RingStats{"test": {Actions: 5}, "pilot": {Actions: 5}, "prod": {Actions: 10}},
			want: map[string]want{
				"test":  {true, true, "first ring: always open"},
				"pilot": {false, false, "0 successes in ring test, 2 required; soak not started"},
				"prod":  {false, false, "ring pilot itself is not open"},
			},
		},
		{
			name:  "soak not yet elapsed (23h of 24h)",
			stats: map[string]deploy.RingStats{"test": {Actions: 5, Successes: 3, LastSuccess: ago(23 * time.Hour)}, "pilot": {Actions: 1}, "prod": {Actions: 1}},
			want: map[string]want{
				"pilot": {false, false, "soak 23h0m0s since ring test's last success"},
			},
		},
		{
			name:  "soak elapsed exactly, successes and failure rate hold",
			stats: map[string]deploy.RingStats{"test": {Actions: 5, Successes: 2, Failures: 2, LastSuccess: ago(24 * time.Hour)}, "pilot": {Actions: 1}, "prod": {Actions: 1}},
			want: map[string]want{
				"pilot": {true, true, "ring test: 2 successes (min 2), failure rate 0.500 (max 0.500)"},
				"prod":  {false, false, "0 successes in ring pilot, 1 required"},
			},
		},
		{
			name:  "failure rate above the maximum",
			stats: map[string]deploy.RingStats{"test": {Actions: 5, Successes: 2, Failures: 3, LastSuccess: ago(48 * time.Hour)}, "pilot": {Actions: 1}, "prod": {Actions: 1}},
			want: map[string]want{
				"pilot": {false, false, "failure rate 0.600 (3 of 5) in ring test above the maximum 0.500"},
			},
		},
		{
			name:  "too few successes",
			stats: map[string]deploy.RingStats{"test": {Actions: 5, Successes: 1, LastSuccess: ago(48 * time.Hour)}, "pilot": {Actions: 1}, "prod": {Actions: 1}},
			want: map[string]want{
				"pilot": {false, false, "1 successes in ring test, 2 required"},
			},
		},
		{
			name: "every gate holds: prod opens after pilot's 48h soak",
			stats: map[string]deploy.RingStats{
				"test":  {Actions: 5, Successes: 5, LastSuccess: ago(100 * time.Hour)},
				"pilot": {Actions: 5, Successes: 5, LastSuccess: ago(48 * time.Hour)},
				"prod":  {Actions: 10},
			},
			want: map[string]want{
				"pilot": {true, true, "ring test: 5 successes"},
				"prod":  {true, true, "ring pilot: 5 successes (min 1), failure rate 0.000 (max 0.100), soak 48h0m0s (min 48h0m0s)"},
			},
		},
		{
			name: "an empty ring passes on what held before it",
			stats: map[string]deploy.RingStats{
				"test": {Actions: 5, Successes: 5, LastSuccess: ago(100 * time.Hour)},
				"prod": {Actions: 10},
			},
			want: map[string]want{
				"pilot": {true, true, "ring test: 5 successes"},
				"prod":  {true, true, "ring pilot has no actions in this plan: its gate does not apply"},
			},
		},
		{
			name: "an empty ring after a closed gate stays closed",
			stats: map[string]deploy.RingStats{
				"test": {Actions: 5, Successes: 1, LastSuccess: ago(100 * time.Hour)},
				"prod": {Actions: 10},
			},
			want: map[string]want{
				"pilot": {false, false, "1 successes in ring test, 2 required"},
				"prod":  {false, false, "ring pilot has no actions in this plan: its gate does not apply; ring pilot itself is not open"},
			},
		},
		{
			name: "hosts of rings the policy does not name come last, gated by prod",
			stats: map[string]deploy.RingStats{
				"test":  {Actions: 1, Successes: 2, LastSuccess: ago(100 * time.Hour)},
				"pilot": {Actions: 1, Successes: 1, LastSuccess: ago(100 * time.Hour)},
				"prod":  {Actions: 1}, "lab": {Actions: 3},
			},
			want: map[string]want{
				"prod":            {true, true, "ring pilot: 1 successes"},
				deploy.OtherRings: {true, true, "ring prod: 0 successes (min 0)"},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gates := deploy.Gates(pol, c.stats, now)
			got := map[string]deploy.Gate{}
			for i, g := range gates {
				if g.RingIndex != i {
					t.Errorf("%s: ring index %d at position %d", g.Ring, g.RingIndex, i)
				}
				got[g.Ring] = g
			}
			for ring, w := range c.want {
				g, ok := got[ring]
				if !ok {
					t.Errorf("no gate for ring %s", ring)
					continue
				}
				if g.Open != w.open || g.EmergencyOpen != w.emergency || !strings.Contains(g.Reason, w.reason) {
					t.Errorf("ring %s: open %v, emergency %v, reason %q; want %v, %v, containing %q", ring, g.Open, g.EmergencyOpen, g.Reason, w.open, w.emergency, w.reason)
				}
			}
		})
	}
}

// The emergency path: with soak bypassed, emergency actions pass a gate
// whose only unmet condition is soak; never one whose successes or failure
// rate fail.
func TestGateEmergencyBypassesOnlySoak(t *testing.T) {
	pol := mustPolicy(t, fixturePolicy+"emergency:\n  when: {kev: true}\n  bypass: [soak]\n")
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	gates := deploy.Gates(pol, map[string]deploy.RingStats{
		"test":  {Actions: 3, Successes: 3, LastSuccess: now.Add(-time.Hour)},
		"pilot": {Actions: 3, Successes: 1, Failures: 2, LastSuccess: now.Add(-time.Hour)},
		"prod":  {Actions: 3},
	}, now)
	if g := gates[1]; g.Open || !g.EmergencyOpen || !strings.Contains(g.Reason, "emergency actions bypass soak") {
		t.Errorf("pilot: %+v; want closed for normal waves, open for emergencies (soak only)", g)
	}
	if g := gates[2]; g.Open || g.EmergencyOpen {
		t.Errorf("prod: %+v; want closed for all: pilot's failure rate 0.667 > 0.1", g)
	}
	// Without the bypass, emergencies wait like everyone else.
	gates = deploy.Gates(mustPolicy(t, fixturePolicy), map[string]deploy.RingStats{"test": {Actions: 3, Successes: 3, LastSuccess: now.Add(-time.Hour)}}, now)
	if g := gates[1]; g.Open || g.EmergencyOpen {
		t.Errorf("pilot without bypass: %+v", g)
	}
}

// A policy without rings: one ring, always open.
func TestGateNoRings(t *testing.T) {
	pol, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	gates := deploy.Gates(pol, map[string]deploy.RingStats{"prod": {Actions: 4, Failures: 4}, "": {Actions: 1}}, time.Now())
	if len(gates) != 1 || !gates[0].Open || gates[0].Ring != deploy.OtherRings {
		t.Errorf("gates without rings: %+v", gates)
	}
}
