package outcomes

import (
	"fmt"
	"testing"
)

// TestPlanIndex: lookups through a real hash and through one under which
// every id collides (the probe, and its comparison of ids, must then tell
// them apart), in a builder sized for the actions and in one sized for
// none (its table grows), an action added twice keeping its last host and
// package, and the nil index of a plan not read.
func TestPlanIndex(t *testing.T) {
	type action struct{ id, host, pkg string }
	actions := []action{
		{"a1", "h1", "openssl"}, {"a2", "h2", "openssl"}, {"a3", "h1", "curl"},
		{"a4", "h3", ""}, {"", "h4", "zlib"}, {"a2", "h9", "curl"}, // a2 again: the last wins
	}
	want := map[string]planned{
		"a1": {"h1", "openssl"}, "a2": {"h9", "curl"}, "a3": {"h1", "curl"}, "a4": {"h3", ""}, "": {"h4", "zlib"},
	}
	for _, tc := range []struct {
		name string
		hash func(string) uint64
		size int
	}{
		{"maphash", newHash(), len(actions)},
		{"all collide", func(string) uint64 { return 7 }, len(actions)},
		{"grown", newHash(), 0},
		{"all collide, grown", func(string) uint64 { return 7 }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newPlanIndexBuilder(tc.size, 0, tc.hash)
			for _, a := range actions {
				if err := b.add(a.id, a.host, a.pkg); err != nil {
					t.Fatal(err)
				}
			}
			x := b.index()
			if x.len() != len(want) {
				t.Errorf("len %d, want %d", x.len(), len(want))
			}
			for id, w := range want {
				if got, ok := x.get(id); !ok || got != w {
					t.Errorf("get(%q) = %v, %v; want %v", id, got, ok, w)
				}
			}
			for _, id := range []string{"a5", "a", "a10", "h1"} {
				if got, ok := x.get(id); ok {
					t.Errorf("get(%q) = %v; want it missing", id, got)
				}
			}
		})
	}
	var none *planIndex
	if _, ok := none.get("a1"); ok || none.len() != 0 {
		t.Error("the nil index holds actions")
	}
}

// BenchmarkAddActions: indexing a plan of 200,000 actions, the read that
// the first outcomes of a plan wait for.
func BenchmarkAddActions(b *testing.B) {
	const n = 200000
	rows := make([][4]string, n)
	for i := range rows {
		rows[i] = [4]string{"plan-0001", fmt.Sprintf("act-%08d", i), fmt.Sprintf("host-%06d", i/3), "openssl"}
	}
	each := func(yield func(plan, action, host, pkg string)) error {
		for _, r := range rows {
			yield(r[0], r[1], r[2], r[3])
		}
		return nil
	}
	hash := newHash()
	b.ReportAllocs()
	for b.Loop() {
		if err := addActions(map[string]*planIndex{}, hash, each); err != nil {
			b.Fatal(err)
		}
	}
}
