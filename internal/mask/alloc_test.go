package mask

import "testing"

// The no-match path must not allocate: engines call Find and Mask on every
// row and every chunk of a response.
func TestNoAllocsWhenNothingMatches(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and the race detector change allocation counts")
	}
	m := defaultMasker(t)
	withCustom := maskerWith(t, `
detectors: {default: redact}
custom: [{name: employee_id, pattern: 'EMP-[0-9]{6}'}]
`)
	inputs := map[string][]byte{
		"prose": benchInputs()["clean-prose"][:64<<10],
		"logs":  benchInputs()["clean-logs"][:64<<10],
	}
	dst := make([]byte, 0, 128<<10)
	var fs []Finding
	for name, in := range inputs {
		for _, mm := range []struct {
			name string
			m    *Masker
		}{{"builtin", m}, {"custom", withCustom}} {
			if n := testing.AllocsPerRun(20, func() { fs = mm.m.Find(in, fs[:0]) }); n != 0 || len(fs) != 0 {
				t.Errorf("%s/%s: Find: %v allocs, %d findings", name, mm.name, n, len(fs))
			}
			if n := testing.AllocsPerRun(20, func() { dst = mm.m.Mask(dst[:0], in) }); n != 0 {
				t.Errorf("%s/%s: Mask: %v allocs", name, mm.name, n)
			}
		}
	}
	// A column rule resolved once costs nothing per clean value.
	rule := m.Column(ColumnRef{"c", "s", "t", "note"})
	v := []byte("leave it at the door")
	if n := testing.AllocsPerRun(100, func() { dst, _ = rule.Apply(dst[:0], v) }); n != 0 {
		t.Errorf("ColumnRule.Apply: %v allocs", n)
	}
}

// Masking found values appends into dst without allocating when it has room.
func TestNoAllocsWhenMasking(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and the race detector change allocation counts")
	}
	in := benchInputs()["pii-dense"][:64<<10]
	dst := make([]byte, 0, 256<<10)
	for _, st := range []string{"redact", "partial", "token", "null"} {
		m := maskerWith(t, "detectors: {default: "+st+"}")
		m.Mask(dst[:0], in) // warm the HMAC pool
		if n := testing.AllocsPerRun(10, func() { dst = m.Mask(dst[:0], in) }); n != 0 {
			t.Errorf("%s: %v allocs", st, n)
		}
	}
}
