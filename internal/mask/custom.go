package mask

import (
	"fmt"
	"regexp"
	"strings"
)

// Custom detectors: an RE2 pattern from the rules, optionally narrowed to
// its "value" group and checked by a named validator. They run at regexp
// speed, beside the built-in scanner; matches are non-overlapping, as with
// regexp.FindAll.

type custom struct {
	id    Detector
	re    *regexp.Regexp
	group int // index of the "value" group, or 0 for the whole match
	valid func([]byte) bool
}

// validators are the named checks a custom detector may use.
var validators = map[string]func([]byte) bool{
	"luhn": func(b []byte) bool { return luhnText(b) },
	"card": func(b []byte) bool {
		var d [19]byte
		n := 0
		for _, c := range b {
			if isDigit(c) {
				if n == len(d) {
					return false
				}
				d[n] = c - '0'
				n++
			}
		}
		return luhn(d[:n]) && cardIssuer(d[:n])
	},
	"iban": ibanText,
	"ssn":  ssnText,
	"ipv4": validIPv4,
	"ipv6": validIPv6,
}

func compileCustom(cr CustomRule, id Detector, sh *shared) (*custom, error) {
	if !customName.MatchString(cr.Name) {
		return nil, fmt.Errorf("name %q: want lower-case letters, digits and '_'", cr.Name)
	}
	if _, ok := ParseDetector(cr.Name); ok || cr.Name == "default" {
		return nil, fmt.Errorf("name %q is taken by a built-in detector", cr.Name)
	}
	for d := CustomBase; d < id; d++ {
		if sh.names[d] == cr.Name {
			return nil, fmt.Errorf("name %q is used twice", cr.Name)
		}
	}
	re, err := regexp.Compile(cr.Pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: pattern: %w", cr.Name, err)
	}
	if re.MatchString("") {
		return nil, fmt.Errorf("%s: pattern matches the empty string", cr.Name)
	}
	c := &custom{id: id, re: re, group: re.SubexpIndex("value")}
	if c.group < 0 {
		c.group = 0
	}
	if cr.Validator != "" {
		v, ok := validators[strings.ToLower(cr.Validator)]
		if !ok {
			return nil, fmt.Errorf("%s: unknown validator %q (want luhn, card, iban, ssn, ipv4 or ipv6)", cr.Name, cr.Validator)
		}
		c.valid = v
	}
	st := Redact
	if cr.Strategy != "" {
		if st, err = ParseStrategy(cr.Strategy); err != nil {
			return nil, fmt.Errorf("%s: %w", cr.Name, err)
		}
	}
	sh.base[id], sh.clearFor[id] = st, cr.ClearFor
	sh.names[id] = cr.Name
	sh.labels[id] = []byte("[REDACTED:" + strings.ToUpper(cr.Name) + "]")
	return c, nil
}

// next returns the first validated match at or after pos.
func (c *custom) next(src []byte, pos int) (Finding, bool) {
	for pos < len(src) {
		var loc []int
		if c.group > 0 {
			loc = c.re.FindSubmatchIndex(src[pos:])
		} else {
			loc = c.re.FindIndex(src[pos:])
		}
		if loc == nil {
			return Finding{}, false
		}
		s, e := pos+loc[0], pos+loc[1]
		vs, ve := s, e
		if c.group > 0 {
			if loc[2*c.group] < 0 {
				vs, ve = 0, 0
			} else {
				vs, ve = pos+loc[2*c.group], pos+loc[2*c.group+1]
			}
		}
		if ve > vs && (c.valid == nil || c.valid(src[vs:ve])) {
			return Finding{vs, ve, c.id}, true
		}
		if e > s {
			pos = e
		} else {
			pos = s + 1
		}
	}
	return Finding{}, false
}
