package mask

import (
	"regexp"
	"sort"
)

// naive is the baseline the benchmarks compare against: the same detectors
// written the obvious way, one Go regexp each plus the same validators,
// merged and de-overlapped afterwards.
var naive = []struct {
	d     Detector
	re    *regexp.Regexp
	valid func([]byte) bool
}{
	{Card, regexp.MustCompile(`\b(?:\d[ -]?){12,18}\d\b`), validators["card"]},
	{Email, regexp.MustCompile(`[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}\b`), nil},
	{SSN, regexp.MustCompile(`\b\d{3}[- ]\d{2}[- ]\d{4}\b`), ssnText},
	{Phone, regexp.MustCompile(`(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\b\d{2,5}[ .-]\d{2,8}(?:[ .-]\d{2,4}){0,3}\b`), nil},
	{IBAN, regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b`), ibanText},
	{IPv4, regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b`), nil},
	{IPv6, regexp.MustCompile(`(?i)(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,7}:|(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f]{1,4}|::(?:[0-9a-f]{1,4}:){0,5}[0-9a-f]{1,4}|::ffff:(?:\d{1,3}\.){3}\d{1,3}`), validIPv6},
	{AWSAccessKey, regexp.MustCompile(`\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA|APKA)[A-Z0-9]{16}\b`), nil},
	{AWSSecretKey, regexp.MustCompile(`\b[A-Za-z0-9/+]{40}\b`), looksRandom},
	{GitHubToken, regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36,251}\b|\bgithub_pat_\w{70,251}`), nil},
	{SlackToken, regexp.MustCompile(`\b(?:xox[baprse]|xapp)-[A-Za-z0-9-]{15,255}`), nil},
	{StripeKey, regexp.MustCompile(`\b[rs]k_(?:live|test)_[A-Za-z0-9]{24,247}\b|\bwhsec_[A-Za-z0-9]{32,128}\b`), nil},
	{GoogleAPIKey, regexp.MustCompile(`\bAIza[A-Za-z0-9_-]{35}|\bya29\.[A-Za-z0-9_-]{20,}|\bGOCSPX-[A-Za-z0-9_-]{24,64}`), nil},
	{JWT, regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{7,}\.eyJ[A-Za-z0-9_-]{7,}\.[A-Za-z0-9_-]*`), nil},
	{PrivateKey, regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----`), nil},
}

func naiveFind(src []byte, dst []Finding) []Finding {
	start := len(dst)
	for _, p := range naive {
		for _, loc := range p.re.FindAllIndex(src, -1) {
			if p.valid == nil || p.valid(src[loc[0]:loc[1]]) {
				dst = append(dst, Finding{loc[0], loc[1], p.d})
			}
		}
	}
	fs := dst[start:]
	sort.Slice(fs, func(a, b int) bool { return fs[a].Start < fs[b].Start })
	out := dst[:start]
	end := -1
	for _, f := range fs {
		if f.Start >= end {
			out = append(out, f)
			end = f.End
		}
	}
	return out
}

func naiveMask(dst, src []byte, fs []Finding) []byte {
	last := 0
	for _, f := range naiveFind(src, fs[:0]) {
		dst = append(dst, src[last:f.Start]...)
		dst = append(dst, "[REDACTED:"...)
		dst = append(dst, f.Detector.String()...)
		dst = append(dst, ']')
		last = f.End
	}
	return append(dst, src[last:]...)
}
