package consumer

import (
	"container/list"
	"sync"
)

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

// hashSet is what decoders and the loop ask about package sets: known
// (stored, in the LRU) or pending (claimed by a batch not yet stored). It is
// safe for concurrent use: decoders call Has, the loop Claim and Stored.
type hashSet struct {
	mu      sync.Mutex
	known   *hashLRU
	pending map[string]struct{}
}

func newHashSet(max int) *hashSet {
	return &hashSet{known: newHashLRU(max), pending: map[string]struct{}{}}
}

// Has reports whether h is stored or pending: its packages need not be
// decoded again.
func (s *hashSet) Has(h string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[h]; ok {
		return true
	}
	return s.known.Contains(h)
}

// Claim marks h pending and reports true when it was neither pending nor
// known: the caller's batch then inserts its packages.
func (s *hashSet) Claim(h string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[h]; ok || s.known.Contains(h) {
		return false
	}
	s.pending[h] = struct{}{}
	return true
}

// Stored moves hashes from pending to known, once their batch is inserted.
func (s *hashSet) Stored(hashes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range hashes {
		delete(s.pending, h)
		s.known.Add(h)
	}
}

// Release drops hashes from pending without storing them: their batch
// failed to insert their packages, so a later message must.
func (s *hashSet) Release(hashes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range hashes {
		delete(s.pending, h)
	}
}

// Len is the number of known hashes.
func (s *hashSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known.Len()
}
