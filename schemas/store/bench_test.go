package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// benchRead measures the Query/Scan path exports use: rows/s through Scan
// into typed destinations.
func benchRead(b *testing.B, st store.Store) {
	ctx := context.Background()
	const n = 1_000_000
	q := fmt.Sprintf(`SELECT concat('host-', toString(number %% 1000)) AS host, number AS n,
		['a', toString(number %% 7)] AS tags, toDateTime('2025-01-01 00:00:00') AS at, toUInt8(number %% 2) AS flag
		FROM system.numbers LIMIT %d`, n)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rows, err := st.Query(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		var (
			host string
			num  uint64
			tags []string
			at   time.Time
			flag bool
			got  int
		)
		for rows.Next() {
			if err := rows.Scan(&host, &num, &tags, &at, &flag); err != nil {
				b.Fatal(err)
			}
			got++
		}
		if err := rows.Err(); err != nil || got != n {
			b.Fatalf("read %d rows: %v", got, err)
		}
		rows.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkQueryCHDB(b *testing.B) { benchRead(b, testenv.CHDBStore(b)) }

func BenchmarkQueryClickHouse(b *testing.B) { benchRead(b, testenv.ServerStore(b)) }

func benchInsert(b *testing.B, st store.Store) {
	ctx := context.Background()
	if err := st.Exec(ctx, "CREATE TABLE bench (host String, n UInt64, tags Array(String), at DateTime) ENGINE = MergeTree ORDER BY (host, n)"); err != nil {
		b.Fatal(err)
	}
	rows := make([][]any, 100_000)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		rows[i] = []any{fmt.Sprintf("host-%05d", i%1000), uint64(i), []string{"t", "u"}, at}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := st.Insert(ctx, "bench", []string{"host", "n", "tags", "at"}, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkInsertCHDB(b *testing.B) { benchInsert(b, testenv.CHDBStore(b)) }

func BenchmarkInsertClickHouse(b *testing.B) { benchInsert(b, testenv.ServerStore(b)) }
