package sqlguard

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Analyzer analyses statements and caches one Analysis per statement shape
// (CacheKey), so each shape is parsed once. The cache is a sharded map
// bounded at about maxEntries, evicting with CLOCK (second chance): a hit
// only sets a bit under a read lock, so readers on different cores do not
// serialise on an LRU list. It is safe for concurrent use.
//
// The cache never changes an outcome: the analysis depends on no literal
// value, CacheKey is unsure of anything it cannot lex exactly, and unsure or
// unparsable text is analysed afresh every time. A prepared statement keeps
// the *Analysis of its Parse message; engines need not ask again on Bind.
type Analyzer struct {
	seed   maphash.Seed
	shards []shard
	gen    atomic.Uint64
	bypass atomic.Uint64
}

type shard struct {
	mu      sync.RWMutex
	index   map[string]int // key → position in ring
	ring    []entry
	hand    int
	max     int
	hits    atomic.Uint64
	misses  atomic.Uint64
	evicted atomic.Uint64
	_       [64]byte // keep shards' counters on separate cache lines
}

type entry struct {
	key string
	a   *Analysis
	ref atomic.Bool
}

const (
	// DefaultCacheEntries is the cache size NewAnalyzer uses for
	// maxEntries <= 0.
	DefaultCacheEntries = 4096
	// maxKeyLen bounds what one entry can hold; longer statements (bulk
	// VALUES lists, mostly, whose shape changes with their row count) are
	// analysed uncached.
	maxKeyLen = 16 << 10
	// keyBuf is the stack buffer a lookup lexes into.
	keyBuf = 1024
)

// NewAnalyzer returns an Analyzer caching about maxEntries shapes
// (DefaultCacheEntries if maxEntries <= 0).
func NewAnalyzer(maxEntries int) *Analyzer {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	n := 1
	for n < 16 && n*2 <= maxEntries {
		n *= 2
	}
	z := &Analyzer{seed: maphash.MakeSeed(), shards: make([]shard, n)}
	for i := range z.shards {
		z.shards[i].max = (maxEntries + n - 1) / n
		z.shards[i].index = make(map[string]int)
	}
	return z
}

// Analyze returns the analysis of sql, from the cache when a statement of
// the same shape was analysed since the last Invalidate. It never returns
// nil. The result is shared: callers must not modify it.
func (z *Analyzer) Analyze(sql string) *Analysis {
	var buf [keyBuf]byte
	key, ok := CacheKey(sql, buf[:0])
	if !ok || len(key) > maxKeyLen {
		z.bypass.Add(1)
		return analyze(sql, key, ok)
	}
	s := &z.shards[maphash.Bytes(z.seed, key)&uint64(len(z.shards)-1)]
	s.mu.RLock()
	if i, found := s.index[string(key)]; found {
		e := &s.ring[i]
		a := e.a
		if !e.ref.Load() {
			e.ref.Store(true)
		}
		s.mu.RUnlock()
		s.hits.Add(1)
		return a
	}
	s.mu.RUnlock()

	gen := z.gen.Load()
	a := analyze(sql, key, true)
	if a.Class == ClassUnparsed {
		// The error text quotes the text near the error, literals included.
		z.bypass.Add(1)
		return a
	}
	s.misses.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if z.gen.Load() != gen {
		return a // invalidated meanwhile: do not cache across it
	}
	if i, found := s.index[string(key)]; found {
		return s.ring[i].a // another goroutine analysed the same shape
	}
	s.insert(string(key), a)
	return a
}

// insert adds an entry, evicting with CLOCK when the shard is full: the hand
// clears reference bits until it finds an entry not used since its last
// pass. s.mu must be held.
func (s *shard) insert(key string, a *Analysis) {
	if len(s.ring) < s.max {
		s.index[key] = len(s.ring)
		s.ring = append(s.ring, entry{key: key, a: a})
		return
	}
	for s.ring[s.hand].ref.Load() {
		s.ring[s.hand].ref.Store(false)
		s.hand = (s.hand + 1) % len(s.ring)
	}
	e := &s.ring[s.hand]
	delete(s.index, e.key)
	e.key, e.a = key, a
	s.index[key] = s.hand
	s.hand = (s.hand + 1) % len(s.ring)
	s.evicted.Add(1)
}

// Invalidate empties the cache and advances the generation. Call it when
// policies, grants or the schema change; a caller that caches decisions per
// shape keys them by Generation.
func (z *Analyzer) Invalidate() {
	z.gen.Add(1)
	for i := range z.shards {
		s := &z.shards[i]
		s.mu.Lock()
		clear(s.index)
		clear(s.ring) // drop the references for the collector
		s.ring = s.ring[:0]
		s.hand = 0
		s.mu.Unlock()
	}
}

// Generation counts Invalidate calls. The *Analysis returned for a shape
// stays the same pointer until it is evicted or invalidated, so a decision
// cache may key on (principal, *Analysis, Generation()).
func (z *Analyzer) Generation() uint64 { return z.gen.Load() }

// Stats are cache counters for metrics.
type Stats struct {
	Hits      uint64 // served from the cache
	Misses    uint64 // parsed, then cached
	Bypassed  uint64 // parsed, not cacheable: CacheKey unsure, too long, or unparsable
	Evictions uint64
	Entries   int
}

// Stats returns the cache counters since NewAnalyzer.
func (z *Analyzer) Stats() Stats {
	st := Stats{Bypassed: z.bypass.Load()}
	for i := range z.shards {
		s := &z.shards[i]
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		st.Evictions += s.evicted.Load()
		s.mu.RLock()
		st.Entries += len(s.ring)
		s.mu.RUnlock()
	}
	return st
}
