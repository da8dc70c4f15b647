package mask

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// Benchmark inputs, about 1 MiB each, built deterministically.
//
//   - clean-prose: English paragraphs with the odd number, no sensitive values.
//   - clean-logs: application logs and JSON lines (timestamps, UUIDs, hex
//     ids, durations, paths, versions): digit-heavy, no sensitive values.
//   - pii-dense: the labeled corpus's positive records, one per line: a
//     sensitive value every 60 bytes or so.

const benchSize = 1 << 20

var benchInputs = sync.OnceValue(func() map[string][]byte {
	return map[string][]byte{
		"clean-prose": cleanProse(),
		"clean-logs":  cleanLogs(),
		"pii-dense":   piiDense(),
	}
})

var benchOrder = []string{"clean-prose", "clean-logs", "pii-dense"}

var proseSentences = []string{
	"The gateway sits between the agents and the systems they are allowed to touch.",
	"Every request is tied to a short-lived identity and checked against policy before it is forwarded.",
	"When a statement looks risky, a human reviewer approves it, and the approval is bound to its exact text.",
	"Results flow back through the masking stage, which rewrites sensitive values before the agent sees them.",
	"In the third quarter we onboarded 14 teams, and the median time to first query fell to 6 minutes.",
	"Reviewers can see who asked, on whose behalf, and why the policy engine decided as it did.",
	"The design favours small packages with one job each, explicit wiring and no global registries.",
	"A session recording keeps every statement with its timing, so an incident can be replayed later.",
	"Keys rotate every 90 days; revocation is checked on every request, not only at login.",
	"Nothing here needs a network round trip that the request did not already make.",
	"Operators asked for clearer errors, so each failure now names the step that failed and why.",
	"Approvals expire after 15 minutes if nobody acts on them, and the agent is told so.",
}

func cleanProse() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < benchSize {
		for k := 0; k < 4+r.IntN(4); k++ {
			b.WriteString(proseSentences[r.IntN(len(proseSentences))])
			b.WriteByte(' ')
		}
		b.WriteString("\n\n")
	}
	return b.Bytes()[:benchSize]
}

func cleanLogs() []byte {
	r := rand.New(rand.NewPCG(3, 4))
	hex := func(n int) string {
		const h = "0123456789abcdef"
		var s strings.Builder
		for range n {
			s.WriteByte(h[r.IntN(16)])
		}
		return s.String()
	}
	var b bytes.Buffer
	for b.Len() < benchSize {
		ts := fmt.Sprintf("2024-%02d-%02dT%02d:%02d:%02d.%03dZ", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000))
		switch r.IntN(3) {
		case 0:
			fmt.Fprintf(&b, "%s INFO request completed method=%s path=/api/v1/%s/%d status=%d duration=%d.%dms bytes=%d request_id=%s-%s-4%s-a%s-%s\n",
				ts, []string{"GET", "POST", "PUT"}[r.IntN(3)], []string{"users", "orders", "sessions"}[r.IntN(3)], r.IntN(100000),
				[]int{200, 201, 204, 404, 500}[r.IntN(5)], r.IntN(900), r.IntN(10), r.IntN(90000), hex(8), hex(4), hex(3), hex(3), hex(12))
		case 1:
			fmt.Fprintf(&b, `{"time":"%s","level":"debug","msg":"cache refresh","component":"store","entries":%d,"hit_ratio":0.%d,"commit":"%s","version":"1.%d.%d"}`+"\n",
				ts, r.IntN(100000), r.IntN(1000), hex(40), r.IntN(30), r.IntN(10))
		default:
			fmt.Fprintf(&b, "%s WARN slow query took %d.%ds rows=%d plan_hash=%s table=public.events worker=%d of %d\n",
				ts, r.IntN(10), r.IntN(1000), r.IntN(1000000), hex(16), r.IntN(16), 16)
		}
	}
	return b.Bytes()[:benchSize]
}

func piiDense() []byte {
	var b bytes.Buffer
	recs := loadCorpus(nil)
	for b.Len() < benchSize {
		for _, r := range recs {
			if len(r.Spans) == 0 {
				continue
			}
			b.WriteString(r.Text)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()[:benchSize]
}

// cpuMeter reports "cpu-MB/s": bytes processed per second of this
// thread's CPU time, which other jobs on the machine do not inflate.
func cpuMeter(b *testing.B, size int) func() {
	lockThread()
	start := threadCPU()
	return func() {
		used := threadCPU() - start
		unlockThread()
		if used > 0 && start > 0 {
			b.ReportMetric(float64(size)*float64(b.N)/used.Seconds()/1e6, "cpu-MB/s")
		}
	}
}

func benchMasker(b *testing.B) *Masker {
	m, err := New(DefaultRules(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkFind reports scanning speed: gatehouse is this package, regexp
// the naive baseline over the same input.
func BenchmarkFind(b *testing.B) {
	m := benchMasker(b)
	for _, name := range benchOrder {
		in := benchInputs()[name]
		b.Run(name+"/gatehouse", func(b *testing.B) {
			fs := make([]Finding, 0, 1<<15)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			done := cpuMeter(b, len(in))
			for b.Loop() {
				fs = m.Find(in, fs[:0])
			}
			done()
			b.ReportMetric(float64(len(fs)), "findings")
		})
		b.Run(name+"/regexp", func(b *testing.B) {
			fs := make([]Finding, 0, 1<<15)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			done := cpuMeter(b, len(in))
			for b.Loop() {
				fs = naiveFind(in, fs[:0])
			}
			done()
			b.ReportMetric(float64(len(fs)), "findings")
		})
	}
}

// BenchmarkMask reports find-and-rewrite speed with the default rules
// (redact everything).
func BenchmarkMask(b *testing.B) {
	m := benchMasker(b)
	for _, name := range benchOrder {
		in := benchInputs()[name]
		b.Run(name+"/gatehouse", func(b *testing.B) {
			out := make([]byte, 0, 2*len(in))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			done := cpuMeter(b, len(in))
			for b.Loop() {
				out = m.Mask(out[:0], in)
			}
			done()
		})
		b.Run(name+"/regexp", func(b *testing.B) {
			out := make([]byte, 0, 2*len(in))
			fs := make([]Finding, 0, 1<<15)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			done := cpuMeter(b, len(in))
			for b.Loop() {
				out = naiveMask(out[:0], in, fs)
			}
			done()
		})
	}
}

// BenchmarkMaskStrategy shows the cost of each strategy on PII-dense text.
func BenchmarkMaskStrategy(b *testing.B) {
	in := benchInputs()["pii-dense"]
	for _, st := range []string{"redact", "partial", "token", "null"} {
		r, err := ParseRules([]byte("detectors: {default: " + st + "}"))
		if err != nil {
			b.Fatal(err)
		}
		m, err := New(r, []byte("benchmark-key-0123456789"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(st, func(b *testing.B) {
			out := make([]byte, 0, 2*len(in))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			done := cpuMeter(b, len(in))
			for b.Loop() {
				out = m.Mask(out[:0], in)
			}
			done()
		})
	}
}

// BenchmarkColumnApply is the per-value cost an engine pays for a column
// rule resolved once.
func BenchmarkColumnApply(b *testing.B) {
	r, err := ParseRules([]byte(`
detectors: {default: redact}
columns:
  - {column: "*/*.users.email", strategy: token, detector: email}
  - {column: "*/*.cards.pan", strategy: partial, detector: card}
`))
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(r, []byte("benchmark-key-0123456789"))
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		ref  ColumnRef
		v    string
	}{
		{"token-email", ColumnRef{"prod", "public", "users", "email"}, "jane.doe@example.com"},
		{"partial-card", ColumnRef{"prod", "public", "cards", "pan"}, "4111111111111111"},
		{"scan-clean", ColumnRef{"prod", "public", "orders", "note"}, "leave at the back door, ring twice"},
		{"scan-pii", ColumnRef{"prod", "public", "orders", "note"}, "call +1 415-555-2671 before delivery"},
	}
	for _, c := range cases {
		rule := m.Column(c.ref)
		v := []byte(c.v)
		b.Run(c.name, func(b *testing.B) {
			out := make([]byte, 0, 256)
			b.SetBytes(int64(len(v)))
			b.ReportAllocs()
			done := cpuMeter(b, len(v))
			for b.Loop() {
				out, _ = rule.Apply(out[:0], v)
			}
			done()
		})
	}
}
