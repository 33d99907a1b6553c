package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// seedOutcomePlan stores plan "plan-api" with actions a1..a3 on hosts h1..h3.
func seedOutcomePlan(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	if err := st.Insert(ctx, "plans", []string{"plan_id", "created_at", "actions"},
		[][]any{{"plan-api", time.Now().UTC(), uint64(3)}}); err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for i := 1; i <= 3; i++ {
		rows = append(rows, []any{"plan-api", fmt.Sprintf("a%d", i), uint32(i), fmt.Sprintf("h%d", i), "openssl", "1.0", "1.1"})
	}
	if err := st.Insert(ctx, "plan_actions", []string{"plan_id", "action_id", "rank", "host_id", "package", "installed_version", "target_version"}, rows); err != nil {
		t.Fatal(err)
	}
}

func outcomeLine(plan, action, host, status string, attempt int) string {
	errText := ""
	if status == "failed" {
		errText = `,"error":"dpkg failed"`
	}
	return fmt.Sprintf(`{"version":1,"plan_id":%q,"action_id":%q,"host_id":%q,"package":"openssl","from_version":"1.0","to_version":"1.1","status":%q,"attempt":%d,"started_at":"2026-11-02T22:00:00Z","finished_at":"2026-11-02T22:01:00Z","reboot_required":false%s}`,
		plan, action, host, status, attempt, errText)
}

// TestOutcomesPost: POST /api/v1/outcomes through the real handler with
// tokens. An analyst (or approver) may report, a viewer may not; JSON
// lines and arrays are accepted; a malformed line is a 400 and an unknown
// plan or action a 422, each naming the line, and nothing of such a
// request is stored; a repeated request has no second effect; every
// accepted request is in the audit trail under the token's name.
func TestOutcomesPost(t *testing.T) {
	fx := newFixture(t)
	seedOutcomePlan(t, fx.st)
	srv := fx.server(t, Config{})
	viewer, analyst, approver := client{srv, fx.secret[auth.Viewer]}, client{srv, fx.secret[auth.Analyst]}, client{srv, fx.secret[auth.Approver]}
	post := func(c client, body string, status int) map[string]any {
		t.Helper()
		return c.json(t, "POST", "/api/v1/outcomes", strings.NewReader(body), status)
	}
	rows := func() uint64 {
		t.Helper()
		r, err := fx.st.Query(context.Background(), "SELECT count() FROM outcomes FINAL")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var n uint64
		if !r.Next() || r.Scan(&n) != nil {
			t.Fatalf("count outcomes: %v", r.Err())
		}
		return n
	}

	lines := outcomeLine("plan-api", "a1", "h1", "failed", 1) + "\n\n" + outcomeLine("plan-api", "a1", "h1", "succeeded", 2) + "\n"
	post(viewer, lines, 403)
	post(client{srv, ""}, lines, 401)
	got := post(analyst, lines, 200)
	if got["accepted"] != float64(2) {
		t.Fatalf("accepted: %v", got)
	}
	post(analyst, lines, 200) // again: replaces, adds nothing
	arr := "[" + outcomeLine("plan-api", "a2", "h2", "succeeded", 1) + "," + outcomeLine("plan-api", "a3", "h3", "skipped", 1) + "]"
	post(approver, arr, 200)
	if n := rows(); n != 4 {
		t.Fatalf("%d outcome rows, want 4", n)
	}

	for _, c := range []struct {
		name, body string
		status     int
		mention    []string
	}{
		{"unknown plan", outcomeLine("plan-api", "a2", "h2", "succeeded", 3) + "\n" + outcomeLine("plan-x", "a1", "h1", "succeeded", 1),
			422, []string{"line 2", "unknown_plan", `"plan-x"`, "none stored"}},
		{"unknown action", "[" + outcomeLine("plan-api", "a9", "h1", "succeeded", 1) + "]", 422, []string{"item 1", "unknown_action", `"a9"`}},
		{"other host", outcomeLine("plan-api", "a1", "h2", "succeeded", 3), 422, []string{"line 1", "action_mismatch", `"h2"`}},
		{"malformed", outcomeLine("plan-api", "a2", "h2", "succeeded", 3) + "\n" + `{"version":1,"plan_id":"plan-api","reboot_requried":true}`,
			400, []string{"line 2", "reboot_requried"}},
		{"bad array", `[{"version":1}] trailing`, 400, []string{"after the JSON array"}},
		{"empty", "\n\n", 400, []string{"no outcomes"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := post(analyst, c.body, c.status)
			msg, _ := res["error"].(string)
			for _, m := range c.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not mention %s", msg, m)
				}
			}
		})
	}
	if n := rows(); n != 4 {
		t.Fatalf("%d outcome rows after refused requests, want 4 (a refused request stores nothing)", n)
	}
	big := strings.Repeat(outcomeLine("plan-api", "a1", "h1", "succeeded", 1)+"\n", maxOutcomeBody/200)
	post(analyst, big, 413)

	r, err := fx.st.Query(context.Background(), "SELECT actor, object, detail FROM audit_log WHERE action = 'outcome.report' ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var entries []string
	for r.Next() {
		var actor, object, detail string
		if err := r.Scan(&actor, &object, &detail); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, actor+" "+object+" "+detail)
	}
	want := []string{
		"analyst-test plan:plan-api 2 outcomes reported (1 succeeded, 1 failed)",
		"analyst-test plan:plan-api 2 outcomes reported (1 succeeded, 1 failed)",
		"approver-test plan:plan-api 2 outcomes reported (1 succeeded, 1 skipped)",
	}
	if strings.Join(entries, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit entries:\n%s\nwant:\n%s", strings.Join(entries, "\n"), strings.Join(want, "\n"))
	}
}
