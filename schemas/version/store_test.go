package version

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestClickHouseOrder stores versions with their keys in ClickHouse and
// checks that ORDER BY key gives the ecosystem's order: the keys survive the
// store (raw bytes in a String column) and ClickHouse compares them as
// bytes.Compare does.
func TestClickHouseOrder(t *testing.T) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"chdb", testenv.CHDBStore}, {"clickhouse", testenv.ServerStore}} {
		t.Run(backend.name, func(t *testing.T) {
			st := backend.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := st.Exec(ctx, "CREATE TABLE version_key_order (ecosystem String, i UInt32, v String, k String) ENGINE = Memory"); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				eco  string
				vers []string // ascending (ties allowed)
			}{
				{"PyPI", readLines(t, "pep440/pep440-ordered.txt")},
				{"Debian", sortedByRef(t, corpusVersions(t, "debian-versions-generated.txt"), debRef)},
				{"Alpine", sortedByRef(t, corpusVersions(t, "alpine-versions-generated.txt"), apkRefNoZeros)},
			} {
				checkStoreOrder(ctx, t, st, tc.eco, tc.vers)
			}
		})
	}
}

// apkRefNoZeros is go-apk-version on versions without leading-zero
// components (where it follows apk-tools before 2.14).
func apkRefNoZeros(a, b string) (int, bool) {
	if leadingZeroComponent(a) || leadingZeroComponent(b) {
		return 0, false
	}
	return apkRef(a, b)
}

func leadingZeroComponent(v string) bool {
	for i := 0; i+2 < len(v); i++ {
		if v[i] == '.' && v[i+1] == '0' && isDigit(v[i+2]) {
			return true
		}
	}
	return false
}

// sortedByRef sorts the versions the reference can order.
func sortedByRef(t *testing.T, vs []string, ref refCompare) []string {
	var out []string
	for _, v := range vs {
		if _, ok := ref(v, v); ok {
			out = append(out, v)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { c, _ := ref(out[i], out[j]); return c < 0 })
	if len(out) < 1000 {
		t.Fatalf("only %d versions", len(out))
	}
	return out
}

func checkStoreOrder(ctx context.Context, t *testing.T, st store.Store, eco string, vers []string) {
	t.Helper()
	c, _ := Lookup(eco)
	rank := map[string]int{}
	keys := map[string]string{}
	for i, v := range vers {
		if i > 0 && bytes.Compare([]byte(keys[vers[i-1]]), mustKeyBytes(t, c, v)) == 0 {
			rank[v] = rank[vers[i-1]]
		} else {
			rank[v] = i
		}
		keys[v] = string(mustKeyBytes(t, c, v))
	}
	rows := make([][]any, 0, len(vers))
	for i, j := range rand.New(rand.NewPCG(3, 3)).Perm(len(vers)) {
		rows = append(rows, []any{eco, uint32(i), vers[j], keys[vers[j]]})
	}
	if err := st.Insert(ctx, "version_key_order", []string{"ecosystem", "i", "v", "k"}, rows); err != nil {
		t.Fatalf("%s: insert: %v", eco, err)
	}
	res, err := st.Query(ctx, "SELECT v, k FROM version_key_order WHERE ecosystem = ? ORDER BY k", eco)
	if err != nil {
		t.Fatalf("%s: %v", eco, err)
	}
	defer res.Close()
	n, last := 0, -1
	for res.Next() {
		var v, k string
		if err := res.Scan(&v, &k); err != nil {
			t.Fatal(err)
		}
		if k != keys[v] {
			t.Fatalf("%s: %q: key %x came back as %x", eco, v, keys[v], k)
		}
		if rank[v] < last {
			t.Errorf("%s: ORDER BY k puts %q (rank %d) after rank %d", eco, v, rank[v], last)
		}
		last = rank[v]
		n++
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(vers) {
		t.Errorf("%s: got %d rows, want %d", eco, n, len(vers))
	}
}

func mustKeyBytes(t *testing.T, c Comparator, v string) []byte {
	t.Helper()
	k, err := c.AppendKey(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
