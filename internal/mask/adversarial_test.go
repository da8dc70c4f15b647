package mask

import (
	"bytes"
	"testing"
	"time"
)

// Inputs built to make a careless scanner quadratic. Each must be scanned
// in time proportional to its size.
func TestAdversarialInputsStayLinear(t *testing.T) {
	const size = 1 << 20
	rep := func(s string) []byte { return bytes.Repeat([]byte(s), size/len(s)) }
	inputs := map[string][]byte{
		"pem begin without end": rep("-----BEGIN PRIVATE KEY-----."),
		"pem begin, wrong end":  rep("-----BEGIN PRIVATE KEY-----\n-----END CERTIFICATE-----\n"),
		"at signs":              rep("a@"),
		"domains":               rep("@a.b.c.d.e.f.g.h"),
		"digit groups":          rep("1 2 3 4 5 6 7 8 9 0 "),
		"long digit groups":     rep("12345678901234567890123 "),
		"dashed digits":         rep("1-2-3-4-5-6-7-8-"),
		"jwt dots":              rep("eyJaaaaaaaaaaaa.eyJ"),
		"colons":                rep("::::::::"),
		"hex colons":            rep("a:b:c:d:e:f:1:2:3:"),
		"plus":                  rep("+1 +2 +3 "),
		"parens":                rep("((((1) "),
		"base64":                rep("aB3dE5gH7j/K9mN1pQ+"),
		"underscores":           rep("gh_sk_rk_github_whsec_"),
		"slack":                 rep("xoxb-xoxb-"),
		"upper a":               rep("AKIA AIza A"),
		"iban prefixes":         rep("GB82 DE89 "),
	}
	m := defaultMasker(t)
	limit := 2 * time.Second
	if raceEnabled {
		limit = 20 * time.Second
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			m.Find(in, nil)
			m.Mask(nil, in)
			if d := time.Since(start); d > limit {
				t.Fatalf("%d bytes took %v", len(in), d)
			}
		})
	}
}
