package consumer

import "container/list"

// hashLRU remembers the inventory hashes whose packages are stored. Once
// full, it forgets the least recently used hash: forgetting only costs a
// redundant insert that ReplacingMergeTree collapses.
type hashLRU struct {
	max   int
	order *list.List // front = most recent; values are string
	index map[string]*list.Element
}

func newHashLRU(max int) *hashLRU {
	return &hashLRU{max: max, order: list.New(), index: make(map[string]*list.Element, min(max, 1<<16))}
}

// Contains reports whether h is known and marks it recently used.
func (l *hashLRU) Contains(h string) bool {
	e, ok := l.index[h]
	if ok {
		l.order.MoveToFront(e)
	}
	return ok
}

// Add records h as known.
func (l *hashLRU) Add(h string) {
	if e, ok := l.index[h]; ok {
		l.order.MoveToFront(e)
		return
	}
	l.index[h] = l.order.PushFront(h)
	for l.order.Len() > l.max {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.index, last.Value.(string))
	}
}

func (l *hashLRU) Len() int { return l.order.Len() }
