package mask

import (
	"bytes"
	"fmt"
	"strings"
)

// Strategy says how a found value is rewritten.
type Strategy uint8

// Strategies. The zero value means the detector is off: it is not looked for.
const (
	// Redact replaces the value with a label: "[REDACTED:EMAIL]".
	Redact Strategy = iota + 1
	// Partial keeps what is safe to show: the last four digits of a card,
	// phone, SSN or IBAN, an email's domain, an IP's network, a
	// credential's type prefix.
	Partial
	// Token replaces the value with a deterministic keyed token
	// (HMAC-SHA256 under the deployment key) in the value's own format, so
	// equal values still join and group.
	Token
	// Null removes the value; for a column value the engine sends SQL NULL.
	Null
	// Clear leaves the value as it is.
	Clear

	off Strategy = 0
)

var strategyNames = [...]string{off: "off", Redact: "redact", Partial: "partial", Token: "token", Null: "null", Clear: "clear"}

func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("strategy(%d)", uint8(s))
}

// ParseStrategy reads a rule-file strategy name. "off" is only meaningful
// for detectors.
func ParseStrategy(name string) (Strategy, error) {
	for s, n := range strategyNames {
		if n == strings.ToLower(strings.TrimSpace(name)) {
			return Strategy(s), nil
		}
	}
	return 0, fmt.Errorf("unknown strategy %q (want redact, partial, token, null, clear or off)", name)
}

// replace appends the replacement of value v, found by detector d, to dst.
func (m *Masker) replace(dst []byte, d Detector, st Strategy, v []byte) []byte {
	start := len(dst)
	switch st {
	case Redact:
		dst = append(dst, m.sh.label(d)...)
	case Partial:
		dst = partial(dst, d, v)
	case Token:
		dst = m.sh.token(dst, d, v)
	case Null:
	default: // Clear
		dst = append(dst, v...)
	}
	return m.sh.bound(dst, start, v)
}

// bound keeps a replacement within max(len(value), MaxReplacement) bytes,
// the guarantee callers size buffers and wire fields by.
func (sh *shared) bound(dst []byte, start int, v []byte) []byte {
	limit := max(sh.maxRepl, len(v))
	if len(dst)-start <= limit {
		return dst
	}
	dst = append(dst[:start], stars[:min(limit, len(stars))]...)
	if bytes.Contains(dst[start:], v) {
		dst = dst[:start] // v is all stars: nothing is safe to write
	}
	return dst
}

const stars = "********"

// partial appends the partially masked form of v.
func partial(dst []byte, d Detector, v []byte) []byte {
	switch d {
	case Email:
		if at := bytes.LastIndexByte(v, '@'); at >= 0 {
			dst = append(dst, "***"...)
			return append(dst, v[at:]...)
		}
	case IPv4:
		if k := nthIndex(v, '.', 2); k > 0 {
			dst = append(dst, v[:k]...)
			return append(dst, ".*.*"...)
		}
	case IPv6:
		k := nthIndex(v, ':', 3)
		if dc := bytes.Index(v, []byte("::")); dc >= 0 && (k < 0 || dc < k) {
			k = dc
		}
		if k <= 0 {
			return append(dst, "::*"...)
		}
		dst = append(dst, v[:k]...)
		return append(dst, ":*"...)
	case AWSAccessKey, GitHubToken, SlackToken, StripeKey, GoogleAPIKey, JWT, AWSSecretKey:
		dst = append(dst, v[:secretPrefix(d, v)]...)
		return append(dst, stars...)
	case PrivateKey:
		h, f := pemArmour(v)
		dst = append(dst, v[:h]...)
		dst = append(dst, '\n')
		dst = append(dst, stars...)
		if f < len(v) {
			dst = append(dst, '\n')
			dst = append(dst, v[f:]...)
		}
		return dst
	}
	return keepLast4(dst, v)
}

// keepLast4 replaces every letter and digit but the last four with '*',
// keeping separators so the value keeps its shape: "**** **** **** 1111".
func keepLast4(dst []byte, v []byte) []byte {
	n := 0
	for _, c := range v {
		if class[c]&cAlnum != 0 {
			n++
		}
	}
	keep := 4
	if n < 8 {
		keep = 0 // too short for four characters to be safe to show
	}
	seen := 0
	for _, c := range v {
		if class[c]&cAlnum != 0 {
			seen++
			if seen <= n-keep {
				c = '*'
			}
		}
		dst = append(dst, c)
	}
	return dst
}

func nthIndex(v []byte, c byte, n int) int {
	for k, b := range v {
		if b == c {
			n--
			if n == 0 {
				return k
			}
		}
	}
	return -1
}

// secretPrefix is the length of the documented type prefix of a credential.
// Column rules apply it to values of any shape: a value no longer than its
// prefix keeps none of it.
func secretPrefix(d Detector, v []byte) int {
	if p := typePrefix(d, v); p < len(v) {
		return p
	}
	return 0
}

func typePrefix(d Detector, v []byte) int {
	switch d {
	case AWSAccessKey:
		return 4
	case GitHubToken, StripeKey:
		// ghp_, github_pat_, sk_live_, whsec_
		k := bytes.LastIndexByte(v[:min(len(v), 11)], '_')
		return k + 1
	case SlackToken:
		return bytes.IndexByte(v, '-') + 1
	case GoogleAPIKey:
		switch {
		case bytes.HasPrefix(v, []byte("AIza")):
			return 4
		case bytes.HasPrefix(v, []byte("ya29.")):
			return 5
		case bytes.HasPrefix(v, []byte("GOCSPX-")):
			return 7
		}
	case JWT:
		return min(3, len(v))
	}
	return 0
}

// pemArmour returns the end of the BEGIN line and the start of the END
// line (len(v) when there is none).
func pemArmour(v []byte) (head, foot int) {
	if !bytes.HasPrefix(v, pemBegin) {
		return 0, len(v) // a column value that is not PEM at all
	}
	head = len(v)
	if k := bytes.Index(v[min(len(v), 11):], []byte("-----")); k >= 0 {
		head = min(len(v), 11) + k + 5
	}
	foot = len(v)
	if k := bytes.LastIndex(v, pemEnd); k >= head {
		foot = k
	}
	return head, foot
}
