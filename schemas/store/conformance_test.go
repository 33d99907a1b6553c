package store_test

import (
	"testing"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/store/storetest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestConformanceCHDB(t *testing.T) {
	// Holding one store for the whole suite keeps the engine booted between
	// subtests; each subtest still gets a database of its own.
	testenv.CHDBStore(t)
	storetest.Run(t, testenv.CHDBStore)
}

func TestConformanceClickHouse(t *testing.T) {
	storetest.Run(t, func(t testing.TB) store.Store { return testenv.ServerStore(t) })
}
