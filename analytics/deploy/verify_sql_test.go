package deploy_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/deploy/deploytest"
)

// 0022 redefines action_verification_scans and action_states for speed,
// and 0025 the first for memory, keeping their rows: on the hand-worked
// plan (every state, kernels, stale scans, a target without a key) and a
// generated fleet of every outcome class, both views as migrated hold
// exactly the rows of 0014's definitions, created here beside them under
// other names.
func TestVerificationViewsMatch0014OnCHDB(t *testing.T) {
	f := statesFixture(t)
	ctx := context.Background()
	if err := deploytest.Seed(ctx, f.st, 3000, f.now); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../schemas/migrations/0014_deploy.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql := string(b)
	rename := strings.NewReplacer("action_verification_scans", "action_verification_scans_0014", "action_states", "action_states_0014")
	for _, view := range []string{"action_verification_scans", "action_states"} {
		i := strings.Index(sql, "CREATE VIEW IF NOT EXISTS "+view+" AS")
		if i < 0 {
			t.Fatalf("0014 defines no %s", view)
		}
		// Both end with their SETTINGS (a ';' inside a string would cut
		// the statement short).
		const end = "SETTINGS join_use_nulls = 0"
		j := strings.Index(sql[i:], end)
		if j < 0 {
			t.Fatalf("0014's %s: no %q", view, end)
		}
		j += len(end)
		if err := f.st.Exec(ctx, rename.Replace(sql[i:i+j])); err != nil {
			t.Fatalf("0014's %s: %v", view, err)
		}
	}
	for _, view := range []string{"action_verification_scans", "action_states"} {
		var total uint64
		rows, err := f.st.Query(ctx, "SELECT count() FROM "+view)
		if err == nil && rows.Next() {
			err = rows.Scan(&total)
		}
		if rows != nil {
			rows.Close()
		}
		if err != nil || total < 2000 {
			t.Fatalf("%s: %d rows, %v", view, total, err)
		}
		for _, q := range []string{
			"SELECT count() FROM (SELECT * FROM " + view + " EXCEPT SELECT * FROM " + view + "_0014)",
			"SELECT count() FROM (SELECT * FROM " + view + "_0014 EXCEPT SELECT * FROM " + view + ")",
		} {
			rows, err := f.st.Query(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			var n uint64
			if rows.Next() {
				err = rows.Scan(&n)
			}
			rows.Close()
			if err != nil || n != 0 {
				t.Errorf("%s: %d rows differ (%v)", q, n, err)
			}
		}
	}
}
