package sqlguard

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// benchSQL is a typical three-table join, as in the measurements.
const benchSQL = `SELECT o.id, o.total, c.name, p.title FROM orders o JOIN customers c ON c.id = o.customer_id JOIN products p ON p.id = o.product_id WHERE o.created_at > '2024-01-01' AND c.country = 'DE' ORDER BY o.total DESC LIMIT 50`

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pg_query.Parse(benchSQL); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFingerprint(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pg_query.Fingerprint(benchSQL); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pg_query.Normalize(benchSQL); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWalk is the analysis of an already parsed tree.
func BenchmarkWalk(b *testing.B) {
	tree, err := pg_query.Parse(benchSQL)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		analyzeTree(tree)
	}
}

func BenchmarkAnalyzeUncached(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Analyze(benchSQL)
	}
}

func BenchmarkAnalyzeCached(b *testing.B) {
	z := NewAnalyzer(0)
	z.Analyze(benchSQL)
	b.ReportAllocs()
	for b.Loop() {
		z.Analyze(benchSQL)
	}
	if st := z.Stats(); st.Misses != 1 {
		b.Fatalf("stats %+v: want one miss", st)
	}
}

func BenchmarkAnalyzeCachedParallel(b *testing.B) {
	z := NewAnalyzer(0)
	z.Analyze(benchSQL)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			z.Analyze(benchSQL)
		}
	})
}

func BenchmarkCacheKey(b *testing.B) {
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(benchSQL)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := CacheKey(benchSQL, buf[:0]); !ok {
			b.Fatal("unsure")
		}
	}
}
