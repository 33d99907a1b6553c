package schemas_test

import (
	"context"
	"testing"

	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestDocumentedViewsExist: every view or table VIEWS.md documents (what
// `patchgrid sql --views` lists) exists once the migrations ran, so the
// list never offers a name a query would not find.
func TestDocumentedViewsExist(t *testing.T) {
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	views := schemas.DocumentedViews()
	if len(views) < 15 {
		t.Fatalf("only %d documented views parsed from VIEWS.md", len(views))
	}
	for _, v := range views {
		if v.Summary == "" {
			t.Errorf("%s: no summary line", v.Name)
		}
		rows, err := st.Query(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", v.Name)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		if n != 1 {
			t.Errorf("VIEWS.md documents %s, which the migrations do not create", v.Name)
		}
	}
}
