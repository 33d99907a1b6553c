package consumer_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestStorageModel loads PATCHGRID_STORAGE_MODEL endpoints x 30 days (the
// simulator's default rates) into
// chDB and reports rows and bytes per endpoint-day from system.parts, after
// merging (OPTIMIZE ... FINAL) so replayed rows do not count. It is a
// measurement, run on demand: PATCHGRID_STORAGE_MODEL=1000 go test -run
// TestStorageModel -v ./ingest/consumer/
func TestStorageModel(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PATCHGRID_STORAGE_MODEL"))
	if n <= 0 {
		t.Skip("set PATCHGRID_STORAGE_MODEL=<endpoints> to measure")
	}
	const days = 30
	broker := testenv.Kafka(t)
	st := testenv.CHDBStore(t)
	migrate(t, st)
	// The simulator's defaults: 5% failed deployments, 0.2% drift per day.
	msgs := simulateMessages(t, simulate.Config{Endpoints: n, Days: days, Seed: 1})
	want := expect(t, msgs)
	topic := newTopic(t, broker, 4)
	produce(t, broker, topic, msgs)
	drain(t, broker, topic, topic+"-group", st)
	checkLoaded(t, st, want)
	ctx := context.Background()
	for _, tb := range []string{"scans", "inventory_packages"} {
		if err := st.Exec(ctx, "OPTIMIZE TABLE "+tb+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := st.Query(ctx, `SELECT table, sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes)
		FROM system.parts WHERE database = currentDatabase() AND active GROUP BY table ORDER BY table`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	endpointDays := float64(n * days)
	var totalBytes uint64
	for rows.Next() {
		var table string
		var r, disk, raw uint64
		if err := rows.Scan(&table, &r, &disk, &raw); err != nil {
			t.Fatal(err)
		}
		totalBytes += disk
		t.Logf("%-20s rows %9d  on disk %10d B  uncompressed %11d B  per endpoint-day: %.2f rows, %.1f B on disk",
			table, r, disk, raw, float64(r)/endpointDays, float64(disk)/endpointDays)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	cols, err := st.Query(ctx, `SELECT table, name, data_compressed_bytes, data_uncompressed_bytes FROM system.columns
		WHERE database = currentDatabase() AND table IN ('scans', 'inventory_packages')
		ORDER BY data_compressed_bytes DESC LIMIT 8`)
	if err != nil {
		t.Fatal(err)
	}
	defer cols.Close()
	for cols.Next() {
		var table, name string
		var comp, raw uint64
		if err := cols.Scan(&table, &name, &comp, &raw); err != nil {
			t.Fatal(err)
		}
		t.Logf("  column %s.%-16s %10d B compressed, %11d B uncompressed", table, name, comp, raw)
	}
	t.Logf("messages %d (full scans and heartbeats), distinct package sets %d, package rows %d",
		len(msgs), want.hashes, want.packageRows)
	t.Logf("total %.1f B per endpoint-day", float64(totalBytes)/endpointDays)
}
