package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/deploy"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// statesFixture is the fixture with plan PL-states: one action per state
// transition, each on its own host, with the outcomes and scans that lead
// to its state (TestActionStatesOnCHDB says which).
func statesFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	kern := []string{"osv/ADV-2"}
	acts := []act{
		{id: "planned", host: "h-planned", windowStart: 24 * h},
		{id: "unscheduled", host: "h-unsched", unscheduled: true},
		{id: "in-progress", host: "h-inprog", windowStart: -1 * h},
		{id: "window-ended", host: "h-ended", windowStart: -10 * h},
		{id: "succeeded", host: "h-succ", windowStart: -2 * h},
		{id: "unverified", host: "h-unver", windowStart: -50 * h},
		{id: "verified", host: "h-ver", windowStart: -50 * h},
		{id: "still-exposed", host: "h-still", windowStart: -50 * h},
		{id: "verified-later", host: "h-later", windowStart: -80 * h},
		{id: "kernel-reboot", host: "h-kern", windowStart: -50 * h, pkg: "linux-image-6.1.0-25-amd64", target: "6.1.112-1", advisories: kern},
		{id: "kernel-booted", host: "h-booted", windowStart: -50 * h, pkg: "linux-image-6.1.0-25-amd64", target: "6.1.112-1", advisories: kern},
		{id: "no-key", host: "h-nokey", windowStart: -50 * h, pkg: "openssl", target: "9.9.9-1"},
		{id: "failed-retry", host: "h-fail1", windowStart: -50 * h},
		{id: "failed-final", host: "h-fail2", windowStart: -50 * h},
		{id: "rolled-back", host: "h-rb", windowStart: -50 * h},
		{id: "skipped", host: "h-skip", windowStart: -50 * h},
		{id: "stale-scan", host: "h-stale", windowStart: -50 * h},
	}
	f.writePlan("PL-states", acts)
	// Everyone was vulnerable before the plan.
	for _, a := range acts {
		inv := "inv-vuln"
		if strings.HasPrefix(a.id, "kernel") {
			inv = "inv-kern"
		}
		f.scan(a.host, 200*h, inv, "6.1.0-25-amd64")
	}
	f.outcome("PL-states", "succeeded", "h-succ", 1, "succeeded", 1*h, false, "")
	f.outcome("PL-states", "unverified", "h-unver", 1, "succeeded", 48*h, false, "")
	f.outcome("PL-states", "verified", "h-ver", 1, "succeeded", 48*h, false, "")
	f.scan("h-ver", 30*h, "inv-fixed", "6.1.0-25-amd64")
	f.scan("h-ver", 5*h, "inv-fixed", "6.1.0-25-amd64")
	f.outcome("PL-states", "still-exposed", "h-still", 1, "succeeded", 48*h, false, "")
	f.scan("h-still", 40*h, "inv-vuln", "6.1.0-25-amd64")
	// First rescan still vulnerable, the second fixed: verified at the second.
	f.outcome("PL-states", "verified-later", "h-later", 1, "succeeded", 72*h, false, "")
	f.scan("h-later", 60*h, "inv-vuln", "6.1.0-25-amd64")
	f.scan("h-later", 20*h, "inv-fixed", "6.1.0-25-amd64")
	// Kernel: the new image is installed, the host did not reboot.
	f.outcome("PL-states", "kernel-reboot", "h-kern", 1, "succeeded", 48*h, true, "")
	f.scan("h-kern", 30*h, "inv-kern", "6.1.0-25-amd64")
	// Same inventory, rebooted into the new kernel: the old image is not
	// running, the action's advisory is closed.
	f.outcome("PL-states", "kernel-booted", "h-booted", 1, "succeeded", 48*h, true, "")
	f.scan("h-booted", 30*h, "inv-kern", "6.1.0-26-amd64")
	f.outcome("PL-states", "no-key", "h-nokey", 1, "succeeded", 48*h, false, "")
	f.scan("h-nokey", 30*h, "inv-fixed", "6.1.0-25-amd64")
	f.outcome("PL-states", "failed-retry", "h-fail1", 1, "failed", 40*h, false, "dpkg lock held")
	f.outcome("PL-states", "failed-final", "h-fail2", 1, "failed", 45*h, false, "dpkg lock held")
	f.outcome("PL-states", "failed-final", "h-fail2", 2, "failed", 40*h, false, "disk full")
	f.outcome("PL-states", "rolled-back", "h-rb", 1, "rolled_back", 40*h, false, "service did not start")
	f.outcome("PL-states", "skipped", "h-skip", 1, "skipped", 40*h, false, "")
	// A scan from before the outcome does not verify it.
	f.outcome("PL-states", "stale-scan", "h-stale", 1, "succeeded", 30*h, false, "")
	f.scan("h-stale", 31*h, "inv-fixed", "6.1.0-25-amd64")

	return f
}

// Every state transition, worked by hand: one action per case, each on its
// own host, with the outcomes and scans that lead to its state.
func TestActionStatesOnCHDB(t *testing.T) {
	f := statesFixture(t)
	want := map[string]struct {
		state    deploy.State
		attempts uint32
		verified time.Duration // ago; 0: not verified
		reason   string        // substring of state_reason
	}{
		"planned":        {deploy.Planned, 0, 0, "window opens"},
		"unscheduled":    {deploy.Planned, 0, 0, "unscheduled: change freeze"},
		"in-progress":    {deploy.InProgress, 0, 0, "no outcome yet"},
		"window-ended":   {deploy.InProgress, 0, 0, "without an outcome"},
		"succeeded":      {deploy.Succeeded, 1, 0, "awaiting a rescan"},
		"unverified":     {deploy.Unverified, 1, 0, "no scan of the host within 93600 s"},
		"verified":       {deploy.Verified, 1, 30 * h, "at or above 3.0.15-1"},
		"still-exposed":  {deploy.StillExposed, 1, 0, "still shows openssl 3.0.11-1 below 3.0.15-1"},
		"verified-later": {deploy.Verified, 1, 20 * h, "at or above"},
		"kernel-reboot":  {deploy.StillExposed, 1, 0, "reboot required: the running kernel 6.1.0-25-amd64 is unchanged"},
		"kernel-booted":  {deploy.Verified, 1, 30 * h, "no longer installed (or a kernel image no longer running)"},
		"no-key":         {deploy.Unverified, 1, 0, "cannot compare versions: target 9.9.9-1"},
		"failed-retry":   {deploy.Failed, 1, 0, "attempt 1 of 2 failed: dpkg lock held; due again"},
		"failed-final":   {deploy.Failed, 2, 0, "failed for good: 2 of 2 attempts used; last error: disk full"},
		"rolled-back":    {deploy.RolledBack, 1, 0, "rolled back: service did not start"},
		"skipped":        {deploy.Skipped, 1, 0, "skipped by automation"},
		"stale-scan":     {deploy.Unverified, 1, 0, "no scan of the host"},
	}
	rows, err := f.st.Query(f.ctx, `SELECT action_id, state, attempts, verified_at, state_reason, max_attempts, verification_window_s
		FROM action_states WHERE plan_id = 'PL-states'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[deploy.State]bool{}
	n := 0
	for rows.Next() {
		var id, state, reason string
		var attempts, maxAttempts uint32
		var windowS uint64
		var verified time.Time
		if err := rows.Scan(&id, &state, &attempts, &verified, &reason, &maxAttempts, &windowS); err != nil {
			t.Fatal(err)
		}
		n++
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected action %s", id)
			continue
		}
		seen[deploy.State(state)] = true
		if deploy.State(state) != w.state || attempts != w.attempts || !strings.Contains(reason, w.reason) {
			t.Errorf("%s: state %s, attempts %d, reason %q; want %s, %d, reason containing %q", id, state, attempts, reason, w.state, w.attempts, w.reason)
		}
		wantVerified := time.Unix(0, 0).UTC()
		if w.verified > 0 {
			wantVerified = f.ago(w.verified)
		}
		if !verified.Equal(wantVerified) {
			t.Errorf("%s: verified_at %s, want %s", id, verified.UTC(), wantVerified)
		}
		if maxAttempts != 2 || windowS != 26*3600 {
			t.Errorf("%s: settings max_attempts %d, window %d s; want the policy's 2 and 93600", id, maxAttempts, windowS)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("%d rows, want %d", n, len(want))
	}
	for _, s := range deploy.States {
		if !seen[s] {
			t.Errorf("state %s not covered by the fixture", s)
		}
	}

	// patchgrid_duration_seconds reads what policy.Duration writes.
	for _, d := range []time.Duration{0, time.Second, 90 * time.Second, 26 * time.Hour, 90 * time.Minute, 7 * 24 * time.Hour, 1500 * time.Millisecond} {
		text, _ := policy.Duration(d).MarshalText()
		rows, err := f.st.Query(f.ctx, "SELECT patchgrid_duration_seconds(?)", string(text))
		if err != nil {
			t.Fatal(err)
		}
		var got uint64
		for rows.Next() {
			if err := rows.Scan(&got); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		if want := uint64(d / time.Second); got != want {
			t.Errorf("patchgrid_duration_seconds(%q) = %d, want %d", text, got, want)
		}
	}
	// A plan under the built-in policy (version 0) gets the defaults.
	f.writePlanVersion("PL-default", 0, nil)
	rows, err = f.st.Query(f.ctx, "SELECT verification_window_s, max_attempts FROM plan_deploy_settings WHERE plan_id = 'PL-default'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var windowS uint64
	var maxAttempts uint32
	if !rows.Next() {
		t.Fatal("no settings for a plan under the built-in policy")
	}
	if err := rows.Scan(&windowS, &maxAttempts); err != nil {
		t.Fatal(err)
	}
	if time.Duration(windowS)*time.Second != policy.DefaultVerificationWindow || maxAttempts != policy.DefaultMaxAttempts {
		t.Errorf("built-in policy settings: %d s, %d attempts; want %s, %d", windowS, maxAttempts, policy.DefaultVerificationWindow, policy.DefaultMaxAttempts)
	}
}

// The state names in 0014_deploy.sql are exactly deploy.States: the view
// writes the non-outcome states as literals and passes the outcome
// statuses through (last_status), which are schemas/outcome's.
func TestStateNamesMatchSQL(t *testing.T) {
	// 0014 defines action_states, 0022 redefines it: both must hold.
	for _, file := range []string{"0014_deploy.sql", "0022_deploy_verify_speed.sql"} {
		t.Run(file, func(t *testing.T) { testStateNamesMatchSQL(t, file) })
	}
}

func testStateNamesMatchSQL(t *testing.T, file string) {
	b, err := os.ReadFile("../../schemas/migrations/" + file)
	if err != nil {
		t.Fatal(err)
	}
	sql := string(b)
	i := strings.Index(sql, "CREATE VIEW IF NOT EXISTS action_states")
	if i < 0 {
		t.Fatal("action_states not found")
	}
	j := strings.Index(sql[i:], ") AS state,")
	if j < 0 {
		t.Fatal("action_states' state expression not found")
	}
	expr := sql[i : i+j]
	k := strings.Index(expr, "multiIf(")
	var got []deploy.State
	for _, m := range regexp.MustCompile(`,\s*'([a-z_]+)'`).FindAllStringSubmatch(expr[k:], -1) {
		if !slices.Contains(got, deploy.State(m[1])) {
			got = append(got, deploy.State(m[1]))
		}
	}
	if !strings.Contains(expr, "last_status != 'succeeded', last_status") {
		t.Fatal("the view no longer passes the outcome statuses through")
	}
	for _, s := range outcome.Statuses {
		if s != outcome.Succeeded {
			got = append(got, deploy.State(s))
		}
	}
	for _, s := range got {
		if s.Rank() < 0 {
			t.Errorf("SQL state %q is not a deploy.State", s)
		}
	}
	for _, s := range deploy.States {
		if !slices.Contains(got, s) {
			t.Errorf("deploy.State %q is never produced by the SQL", s)
		}
	}
	// The settings' defaults (0014's plan_deploy_settings; 0022 keeps it).
	if file != "0014_deploy.sql" {
		return
	}
	if !strings.Contains(sql, "if(v.window_s = 0, 86400, v.window_s)") || policy.DefaultVerificationWindow != 86400*time.Second {
		t.Errorf("plan_deploy_settings' default window differs from policy.DefaultVerificationWindow %s", policy.DefaultVerificationWindow)
	}
	if !strings.Contains(sql, "if(v.attempts = 0, 3, v.attempts)") || policy.DefaultMaxAttempts != 3 {
		t.Errorf("plan_deploy_settings' default attempts differ from policy.DefaultMaxAttempts %d", policy.DefaultMaxAttempts)
	}
}

func TestParseStateAndRank(t *testing.T) {
	for i, s := range deploy.States {
		if s.Rank() != i {
			t.Errorf("%s rank %d, want %d", s, s.Rank(), i)
		}
		if got, err := deploy.ParseState(string(s)); err != nil || got != s {
			t.Errorf("ParseState(%s) = %s, %v", s, got, err)
		}
		if s.Success() && s.Failure() {
			t.Errorf("%s is both a success and a failure", s)
		}
	}
	if _, err := deploy.ParseState("done"); err == nil {
		t.Error("ParseState accepted an unknown state")
	}
}
