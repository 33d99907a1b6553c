package outcomes

import (
	"fmt"
	"hash/maphash"
	"math"
	"strings"
)

// planned is what an outcome must agree with.
type planned struct{ host, pkg string }

// planIndex holds the actions of a plan as read from plan_actions: for
// each action id, its host and package. A plan of 200,000 actions is read
// while every outcome of the consumer waits for it, and is then kept for
// days, so the index is built for both: its strings are one string, and
// its entries and its table hold no pointers. Building it allocates a few
// objects instead of a few per action, and the collector never scans it
// (a map[string]planned of 200,000 actions took 45-70 ms to build, and
// every collection of the consumer's heap scanned it again).
//
// The table is open addressing with linear probing, at most half full:
// a slot holds an entry's index + 1 (0 is empty), an entry its id's hash,
// compared before the id itself.
type planIndex struct {
	text    string
	entries []planEntry
	slots   []int32 // len a power of two
	hash    func(string) uint64
}

// span is a string of planIndex.text.
type span struct{ off, n uint32 }

type planEntry struct {
	hash              uint64
	action, host, pkg span
}

// newHash returns the hash of planIndex ids: maphash, with a seed of its own.
func newHash() func(string) uint64 {
	seed := maphash.MakeSeed()
	return func(s string) uint64 { return maphash.String(seed, s) }
}

func (x *planIndex) str(s span) string { return x.text[s.off : s.off+s.n] }

// len is the number of actions in x; 0 for nil.
func (x *planIndex) len() int {
	if x == nil {
		return 0
	}
	return len(x.entries)
}

// get returns action's host and package; ok is false when action is not in
// x or x is nil.
func (x *planIndex) get(action string) (p planned, ok bool) {
	if x == nil {
		return planned{}, false
	}
	h := x.hash(action)
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := x.slots[i]
		if e == 0 {
			return planned{}, false
		}
		if en := &x.entries[e-1]; en.hash == h && x.str(en.action) == action {
			return planned{x.str(en.host), x.str(en.pkg)}, true
		}
	}
}

// planIndexBuilder builds a planIndex.
type planIndexBuilder struct {
	text    strings.Builder // its String is the index's text, not a copy
	entries []planEntry
	slots   []int32
	hash    func(string) uint64
	lastPkg span // a plan's actions upgrade a few packages: runs of one package share its text
}

// newPlanIndexBuilder returns a builder sized for n actions whose strings
// take textBytes in all.
func newPlanIndexBuilder(n, textBytes int, hash func(string) uint64) *planIndexBuilder {
	b := &planIndexBuilder{entries: make([]planEntry, 0, n), slots: make([]int32, tableSize(n)), hash: hash}
	b.text.Grow(textBytes)
	return b
}

// tableSize is the number of slots for n entries: a power of two, at
// least 2n.
func tableSize(n int) int {
	size := 2
	for size < 2*n {
		size *= 2
	}
	return size
}

func (b *planIndexBuilder) str(s span) string { return b.text.String()[s.off : s.off+s.n] }

func (b *planIndexBuilder) span(s string) (span, error) {
	if b.text.Len()+len(s) > math.MaxUint32 {
		return span{}, fmt.Errorf("plan's actions take more than %d bytes", uint64(math.MaxUint32))
	}
	sp := span{uint32(b.text.Len()), uint32(len(s))}
	b.text.WriteString(s)
	return sp, nil
}

// add adds an action; an action added again keeps its last host and
// package.
func (b *planIndexBuilder) add(action, host, pkg string) error {
	if b.lastPkg.n == 0 || b.str(b.lastPkg) != pkg {
		var err error
		if b.lastPkg, err = b.span(pkg); err != nil {
			return err
		}
	}
	h := b.hash(action)
	mask := uint64(len(b.slots) - 1)
	i := h & mask
	for ; b.slots[i] != 0; i = (i + 1) & mask {
		if e := &b.entries[b.slots[i]-1]; e.hash == h && b.str(e.action) == action {
			hs, err := b.span(host)
			e.host, e.pkg = hs, b.lastPkg
			return err
		}
	}
	if len(b.entries) == math.MaxInt32-1 {
		return fmt.Errorf("plan has more than %d actions", math.MaxInt32-1)
	}
	as, err := b.span(action)
	if err != nil {
		return err
	}
	hs, err := b.span(host)
	if err != nil {
		return err
	}
	b.entries = append(b.entries, planEntry{hash: h, action: as, host: hs, pkg: b.lastPkg})
	b.slots[i] = int32(len(b.entries))
	if 2*len(b.entries) > len(b.slots) {
		b.grow()
	}
	return nil
}

// grow doubles the table, for more actions than the builder was sized for.
func (b *planIndexBuilder) grow() {
	b.slots = make([]int32, 2*len(b.slots))
	mask := uint64(len(b.slots) - 1)
	for k := range b.entries {
		i := b.entries[k].hash & mask
		for b.slots[i] != 0 {
			i = (i + 1) & mask
		}
		b.slots[i] = int32(k + 1)
	}
}

// index returns the index built; the builder is not used after.
func (b *planIndexBuilder) index() *planIndex {
	return &planIndex{text: b.text.String(), entries: b.entries, slots: b.slots, hash: b.hash}
}
