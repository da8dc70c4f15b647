package sqlguard

import (
	"math/rand/v2"
	"testing"
)

// FuzzCacheKey checks the property the cache rests on: two texts with the
// same CacheKey have the same analysis. For each input it derives a text of
// the same shape (every literal and whitespace run redrawn), and it also
// compares the unrelated second input whenever the keys collide. Failures
// found by `go test -fuzz` are kept under testdata/fuzz/FuzzCacheKey.
func FuzzCacheKey(f *testing.F) {
	for i, sql := range shapeCorpus() {
		f.Add(sql, uint64(i), "SELECT 1")
	}
	f.Add("SELECT * FROM t WHERE a = 1", uint64(7), "SELECT * FROM t WHERE a = 2")
	f.Add("COPY t FROM 'x'", uint64(1), "COPY t FROM ''")
	f.Add("SELECT 1.", uint64(2), "SELECT 1..2")
	f.Add("CREATE TABLE t (a float(5))", uint64(3), "CREATE TABLE t (a float(60))")
	f.Fuzz(func(t *testing.T, sql string, seed uint64, other string) {
		if len(sql) > 4096 || len(other) > 4096 {
			return
		}
		a := Analyze(sql) // must not panic, whatever the input
		if len(a.Accesses) == 0 {
			t.Fatalf("Analyze(%q): no accesses", sql)
		}
		k, ok := key(sql)
		if !ok {
			return
		}
		if n := normalizeKey([]byte(k)); n == "" && k != "" {
			t.Fatalf("normalizeKey(%q) is empty", k)
		}
		same := sameShape(rand.New(rand.NewPCG(seed, seed>>1)), sql)
		k2, ok2 := key(same)
		if !ok2 || k2 != k {
			t.Fatalf("%q -> %q: key %q (%v), want %q", sql, same, showKey([]byte(k2)), ok2, showKey([]byte(k)))
		}
		if diff := diffAnalysis(a, Analyze(same)); diff != "" {
			t.Fatalf("%q and %q share a key but differ: %s", sql, same, diff)
		}
		if k3, ok3 := key(other); ok3 && k3 == k {
			if diff := diffAnalysis(a, Analyze(other)); diff != "" {
				t.Fatalf("%q and %q share a key but differ: %s", sql, other, diff)
			}
		}
	})
}
