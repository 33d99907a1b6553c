package simulate_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func loadInputs(t testing.TB) ([]simulate.Base, []simulate.Upgrade) {
	t.Helper()
	dir := filepath.Join(testenv.SharedData(t), "inventories")
	bases, err := simulate.LoadBases(context.Background(), dir, simulate.ReadInventory, nil)
	if err != nil {
		t.Fatal(err)
	}
	ups, err := simulate.LoadUpgrades(filepath.Join(dir, simulate.UpgradesFile))
	if err != nil {
		t.Fatal(err)
	}
	return bases, ups
}
