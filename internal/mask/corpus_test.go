package mask

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

//go:generate go run ./testdata/gen -o testdata/corpus.jsonl

// corpusRecord is one line of testdata/corpus.jsonl (written by
// testdata/gen): a text and the sensitive values planted in it. Records
// without spans are hard negatives: any finding in them is a false positive.
type corpusRecord struct {
	Class string `json:"class"`
	Text  string `json:"text"`
	Spans []struct {
		Detector string `json:"detector"`
		Offset   int    `json:"offset"`
		Length   int    `json:"length"`
	} `json:"spans"`
}

func loadCorpus(t testing.TB) []corpusRecord {
	fail := func(err error) {
		if t == nil {
			panic(err)
		}
		t.Helper()
		t.Fatal(err)
	}
	path := "testdata/corpus.jsonl"
	if p := os.Getenv("GATEHOUSE_MASK_CORPUS"); p != "" && t != nil {
		path = p // score another labeled file in the same format
	}
	f, err := os.Open(path)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	var recs []corpusRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r corpusRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			fail(err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		fail(err)
	}
	return recs
}

type score struct{ tp, fp, fn int }

func (s score) precision() float64 {
	if s.tp+s.fp == 0 {
		return 1
	}
	return float64(s.tp) / float64(s.tp+s.fp)
}

func (s score) recall() float64 {
	if s.tp+s.fn == 0 {
		return 1
	}
	return float64(s.tp) / float64(s.tp+s.fn)
}

// scoreCorpus matches findings to labels exactly: same detector, offset and
// length. Anything else found is a false positive of its detector; a label
// not found exactly is a false negative of its own.
func scoreCorpus(m *Masker, recs []corpusRecord) (map[string]*score, []string) {
	scores := map[string]*score{}
	get := func(d string) *score {
		if scores[d] == nil {
			scores[d] = &score{}
		}
		return scores[d]
	}
	var misses []string
	var fs []Finding
	for _, r := range recs {
		fs = m.Find([]byte(r.Text), fs[:0])
		want := map[[3]int]string{}
		for _, s := range r.Spans {
			d, ok := ParseDetector(s.Detector)
			if !ok {
				panic("corpus: unknown detector " + s.Detector)
			}
			want[[3]int{int(d), s.Offset, s.Length}] = s.Detector
		}
		for _, f := range fs {
			k := [3]int{int(f.Detector), f.Start, f.Len()}
			if _, ok := want[k]; ok {
				get(f.Detector.String()).tp++
				delete(want, k)
				continue
			}
			get(f.Detector.String()).fp++
			misses = append(misses, fmt.Sprintf("FP %s [%s] %q in %q", f.Detector, r.Class, r.Text[f.Start:f.End], clip(r.Text)))
		}
		for k, d := range want {
			get(d).fn++
			misses = append(misses, fmt.Sprintf("FN %s [%s] %q in %q", d, r.Class, r.Text[k[1]:k[1]+k[2]], clip(r.Text)))
		}
	}
	return scores, misses
}

func clip(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// TestCorpus is the accuracy gate: precision and recall of every detector
// on the labeled corpus must be at least 0.99.
func TestCorpus(t *testing.T) {
	recs := loadCorpus(t)
	m, err := New(DefaultRules(), nil)
	if err != nil {
		t.Fatal(err)
	}
	positives, negatives := 0, 0
	for _, r := range recs {
		positives += len(r.Spans)
		if len(r.Spans) == 0 {
			negatives++
		}
	}
	if positives < 1000 || negatives < 1000 {
		t.Fatalf("corpus too small: %d positive values, %d negative records; want 1000 of each", positives, negatives)
	}
	scores, misses := scoreCorpus(m, recs)
	for _, s := range misses {
		t.Log(s)
	}
	var names []string
	for _, d := range Builtin() {
		names = append(names, d.String())
	}
	sort.Strings(names)
	var tab strings.Builder
	fmt.Fprintf(&tab, "\n| detector | values | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|---|\n")
	for _, n := range names {
		s := scores[n]
		if s == nil || s.tp+s.fn == 0 {
			t.Errorf("%s: no labeled values in the corpus", n)
			continue
		}
		fmt.Fprintf(&tab, "| %s | %d | %d | %d | %d | %.4f | %.4f |\n", n, s.tp+s.fn, s.tp, s.fp, s.fn, s.precision(), s.recall())
		if s.precision() < 0.99 || s.recall() < 0.99 {
			t.Errorf("%s: precision %.4f recall %.4f, want both >= 0.99", n, s.precision(), s.recall())
		}
	}
	fmt.Fprintf(&tab, "\n%d labeled values, %d hard-negative records\n", positives, negatives)
	t.Log(tab.String())
}
