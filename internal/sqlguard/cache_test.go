package sqlguard

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

func TestAnalyzerCaches(t *testing.T) {
	z := NewAnalyzer(100)
	a := z.Analyze("SELECT * FROM t WHERE id = 1")
	b := z.Analyze("SELECT * FROM t WHERE id = 2")
	c := z.Analyze("SELECT * FROM u WHERE id = 1")
	if a != b {
		t.Errorf("same shape: got two analyses")
	}
	if a == c || c.Tables[0] != "public.u" {
		t.Errorf("different shape shared an analysis: %v", c.Tables)
	}
	st := z.Stats()
	if st.Hits != 1 || st.Misses != 2 || st.Bypassed != 0 || st.Entries != 2 {
		t.Errorf("stats = %+v, want 1 hit, 2 misses, 2 entries", st)
	}
}

// TestAnalyzerMatchesUncached: through the cache, every corpus statement and
// texts of the same shape get exactly the uncached analysis.
func TestAnalyzerMatchesUncached(t *testing.T) {
	z := NewAnalyzer(1000)
	r := rand.New(rand.NewPCG(3, 4))
	for range 2 {
		for _, sql := range shapeCorpus() {
			for _, s := range []string{sql, sameShape(r, sql)} {
				if diff := diffAnalysis(z.Analyze(s), Analyze(s)); diff != "" {
					t.Errorf("%q: cached and uncached differ: %s", s, diff)
				}
			}
		}
	}
	if st := z.Stats(); st.Hits == 0 || st.Bypassed == 0 {
		t.Errorf("stats = %+v: want hits and bypasses", st)
	}
}

func TestAnalyzerBypass(t *testing.T) {
	z := NewAnalyzer(100)
	tests := []struct{ name, sql string }{
		{"comment", "SELECT 1 -- hi"},
		{"dollar_quote", "DO $$ BEGIN END $$"},
		{"too_long", "SELECT " + strings.Repeat("a + ", maxKeyLen/4) + "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := z.Stats().Bypassed
			a, b := z.Analyze(tt.sql), z.Analyze(tt.sql)
			if a == b {
				t.Errorf("uncacheable text was cached")
			}
			if got := z.Stats().Bypassed - before; got != 2 {
				t.Errorf("bypassed %d, want 2", got)
			}
		})
	}
	// Unparsable text is never cached: its error quotes the text.
	a := z.Analyze("SELECT 1 2")
	b := z.Analyze("SELECT 1 3")
	if a.Class != ClassUnparsed || b.Class != ClassUnparsed {
		t.Fatalf("classes %q %q", a.Class, b.Class)
	}
	if !strings.Contains(b.Err.Error(), `"3"`) {
		t.Errorf("second error %q is not its own", b.Err)
	}
	if z.Stats().Entries != 0 {
		t.Errorf("entries = %d, want 0", z.Stats().Entries)
	}
}

func TestAnalyzerBounded(t *testing.T) {
	z := NewAnalyzer(64)
	for i := range 1000 {
		z.Analyze(fmt.Sprintf("SELECT c%d FROM t", i))
	}
	st := z.Stats()
	if st.Entries > 64 || st.Entries < 32 {
		t.Errorf("entries = %d, want about 64", st.Entries)
	}
	if st.Evictions != uint64(1000-st.Entries) {
		t.Errorf("evictions = %d, want %d", st.Evictions, 1000-st.Entries)
	}
}

// TestClockSecondChance: a full shard evicts an entry not used since the
// hand last passed, sparing referenced ones.
func TestClockSecondChance(t *testing.T) {
	s := &shard{max: 3, index: map[string]int{}}
	for _, k := range []string{"a", "b", "c"} {
		s.insert(k, &Analysis{})
	}
	s.ring[s.index["a"]].ref.Store(true) // a was hit
	s.insert("d", &Analysis{})
	if _, ok := s.index["a"]; !ok {
		t.Errorf("evicted the referenced entry")
	}
	if _, ok := s.index["b"]; ok {
		t.Errorf("kept b, the oldest unreferenced entry")
	}
	s.insert("e", &Analysis{})
	if _, ok := s.index["c"]; ok || len(s.index) != 3 {
		t.Errorf("index %v: want c evicted next", s.index)
	}
}

func TestAnalyzerInvalidate(t *testing.T) {
	z := NewAnalyzer(10)
	a := z.Analyze("SELECT 1")
	g := z.Generation()
	z.Invalidate()
	if z.Generation() != g+1 {
		t.Errorf("generation %d, want %d", z.Generation(), g+1)
	}
	if z.Stats().Entries != 0 {
		t.Errorf("entries after Invalidate: %d", z.Stats().Entries)
	}
	if b := z.Analyze("SELECT 2"); b == a {
		t.Errorf("analysis survived Invalidate")
	}
}

// TestAnalyzerConcurrent runs lookups, misses, evictions and invalidations
// at once; run with -race.
func TestAnalyzerConcurrent(t *testing.T) {
	z := NewAnalyzer(16)
	corpus := shapeCorpus()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for i := range 300 {
				sql := corpus[r.IntN(len(corpus))]
				a := z.Analyze(sql)
				if a.Class != Analyze(sql).Class {
					t.Errorf("%q: class %q", sql, a.Class)
					return
				}
				_ = a.HasFlag(FlagNoWhere)
				if g == 0 && i%100 == 99 {
					z.Invalidate()
				}
			}
		}()
	}
	wg.Wait()
}

// TestAnalysisSharedSafely: an analysis handed to two callers cannot be
// changed through append by either.
func TestAnalysisSharedSafely(t *testing.T) {
	z := NewAnalyzer(10)
	a := z.Analyze("SELECT a, b FROM t JOIN u USING (id); SELECT 1")
	for name, s := range map[string][]string{"tables": a.Tables, "columns": a.Columns, "flags": a.Flags,
		"statement tables": a.Statements[0].Tables} {
		if cap(s) != len(s) {
			t.Errorf("%s: cap %d > len %d, append would write into the shared array", name, cap(s), len(s))
		}
	}
	if cap(a.Accesses) != len(a.Accesses) || cap(a.Statements) != len(a.Statements) {
		t.Errorf("accesses or statements not clipped")
	}
}

func TestNewAnalyzerSizes(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 3, 16, 100, 1 << 20} {
		z := NewAnalyzer(n)
		total := 0
		for i := range z.shards {
			total += z.shards[i].max
		}
		want := n
		if n <= 0 {
			want = DefaultCacheEntries
		}
		if total < want || total > want+len(z.shards) {
			t.Errorf("NewAnalyzer(%d): capacity %d", n, total)
		}
	}
}
