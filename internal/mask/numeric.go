package mask

// Numeric values (cards, SSNs, phone numbers, IPv4 addresses) are found by
// parsing one "numeric token" at the first digit of a run: digit groups joined
// by single separators. Each detector then checks the group shape it
// expects, so the digits are read once however many detectors look at them.

const maxGroups = 8

type numTok struct {
	n      int
	s, e   [maxGroups]int  // start and end of each digit group
	sep    [maxGroups]byte // separator after group k: ' ', '-', '.', '(' or ')'; 0 when the token ends
	badPar bool            // a '(' was not closed where a phone number would close it
}

func (t *numTok) glen(k int) int { return t.e[k] - t.s[k] }

// parse reads the token whose first digit is at i. open says a '(' came
// just before i, as in "(415) 555-2671".
func (t *numTok) parse(src []byte, i int, open bool) {
	j := i
	inPar := open
	t.n = 0
	t.badPar = false
	for {
		k := t.n
		t.s[k] = j
		j = runOf(src, j, cDigit)
		t.e[k] = j
		t.sep[k] = 0
		t.n++
		c := at(src, j)
		adv := 0
		if inPar {
			switch {
			case c == ')' && isDigit(at(src, j+1)):
				t.sep[k], adv, inPar = ')', 1, false
			case c == ')' && (at(src, j+1) == ' ' || at(src, j+1) == '-') && isDigit(at(src, j+2)):
				t.sep[k], adv, inPar = ')', 2, false
			default:
				t.badPar = true
			}
		} else {
			switch {
			case (c == ' ' || c == '-' || c == '.') && isDigit(at(src, j+1)):
				t.sep[k], adv = c, 1
			case c == ' ' && at(src, j+1) == '(' && isDigit(at(src, j+2)):
				t.sep[k], adv, inPar = '(', 2, true
			case c == '(' && isDigit(at(src, j+1)):
				t.sep[k], adv, inPar = '(', 1, true
			}
		}
		if adv == 0 || t.n == maxGroups {
			return
		}
		j += adv
	}
}

// chain counts the groups from k on that are joined by sep.
func (t *numTok) chain(k int, sep byte) int {
	c := 1
	for k+c-1 < t.n-1 && t.sep[k+c-1] == sep {
		c++
	}
	return c
}

// digitsOf copies the digits of groups [from, to) into d and returns how
// many there were, or -1 when there are more than len(d).
func (t *numTok) digitsOf(src []byte, from, to int, d []byte) int {
	n := 0
	for k := from; k < to; k++ {
		for j := t.s[k]; j < t.e[k]; j++ {
			if n == len(d) {
				return -1
			}
			d[n] = src[j] - '0'
			n++
		}
	}
	return n
}

// scanNumber handles a digit that starts a run (the byte before is not a
// word byte).
func scanNumber(src []byte, i, floor int) (Finding, int) {
	e0 := runOf(src, i, cDigit)
	pv, pp := at(src, i-1), at(src, i-2)
	if (pv == '.' || pv == '-' || pv == ':' || pv == '/') && isDigit(pp) {
		// The middle of a larger number: "2024-01-15", "10:23", "3.14",
		// "1.2.3.4.5". Nothing we detect starts there.
		return Finding{}, e0
	}
	if isWord(at(src, e0)) {
		// Digits then letters ("15T10", "3rd"): not a number, but possibly
		// a base64 secret that happens to start with digits.
		return scanWordDigit(src, i, floor)
	}
	if i-1 < floor && (pv == '+' || pv == '(') {
		// The sign or parenthesis belongs to the previous finding.
		pv = 0
	}
	spaceRun := false
	switch pv {
	case ' ':
		// After "12 ": a space-grouped value starting here would be the
		// tail of a longer run of numbers.
		spaceRun = isDigit(pp)
	case '+':
		if isWord(pp) {
			return Finding{}, e0
		}
		var t numTok
		t.parse(src, i, false)
		if e := phoneE164(src, &t); e > 0 {
			return Finding{i - 1, e, Phone}, e
		}
		return Finding{}, e0
	case '(':
		if !isWord(pp) {
			var t numTok
			t.parse(src, i, true)
			if e := phoneParen(src, &t); e > 0 {
				return Finding{i - 1, e, Phone}, e
			}
		}
	}

	if e := cardPlain(src, i, e0); e > 0 {
		return Finding{i, e, Card}, e
	}
	// Every remaining shape has at least two groups.
	c, c1 := at(src, e0), at(src, e0+1)
	if c != ' ' && c != '-' && c != '.' && c != '(' || spaceRun && c == ' ' ||
		!isDigit(c1) && !(c == ' ' && c1 == '(') {
		return Finding{}, e0
	}
	if !plausible(src, i, e0) {
		return Finding{}, skipChain(src, e0)
	}
	var t numTok
	t.parse(src, i, false)
	if t.n < 2 {
		return Finding{}, e0
	}
	if e := ipv4Tok(src, &t); e > 0 {
		return Finding{i, e, IPv4}, e
	}
	if e := cardGrouped(src, &t); e > 0 {
		return Finding{i, e, Card}, e
	}
	if e := ssnTok(src, &t); e > 0 {
		return Finding{i, e, SSN}, e
	}
	if e := phoneNational(src, &t); e > 0 {
		return Finding{i, e, Phone}, e
	}
	return Finding{}, skipChain(src, e0)
}

// plausible looks at the first two groups of a token (src[i:e0] and the
// one after the separator at e0) and reports whether any grouped shape can
// start that way, so dates, decimals and versions skip the full parse.
func plausible(src []byte, i, e0 int) bool {
	g0, c := e0-i, src[e0]
	one := g0 == 1 && src[i] == '1' // NANP country code
	if c == '(' || at(src, e0+1) == '(' {
		return one
	}
	e1 := runOf(src, e0+1, cDigit)
	g1 := e1 - e0 - 1
	if c == '.' {
		// IPv4 (1-3 digit octets), NANP 415.555.2671, French 01.23.45.67.89
		return g0 <= 3 && g1 <= 3 && at(src, e1) == '.'
	}
	trunk := src[i] == '0' && g0 >= 2 && g0 <= 5
	return trunk || one && g1 == 3 ||
		g0 == 3 && (g1 == 2 || g1 == 3) || // SSN, NANP
		g0 == 4 && (g1 == 4 || g1 == 6) // cards
}

// skipChain returns the end of the groups joined by '-' or '.' from e on:
// the middle of a number, where nothing starts (see scanNumber).
func skipChain(src []byte, e int) int {
	for (at(src, e) == '-' || at(src, e) == '.') && isDigit(at(src, e+1)) {
		e = runOf(src, e+1, cDigit)
	}
	return e
}

// ipv4Tok accepts a dotted quad of decimal octets (0-255, no leading zeros)
// that is not part of a longer dotted sequence such as an OID or version.
func ipv4Tok(src []byte, t *numTok) int {
	if t.n < 4 || t.sep[0] != '.' || t.chain(0, '.') != 4 {
		return 0
	}
	for k := 0; k < 4; k++ {
		if !octet(src[t.s[k]:t.e[k]]) {
			return 0
		}
	}
	if isWord(at(src, t.e[3])) {
		return 0 // "1.2.3.4ms"
	}
	return t.e[3]
}

func octet(b []byte) bool {
	switch len(b) {
	case 1:
		return true
	case 2:
		return b[0] != '0'
	case 3:
		return b[0] == '1' || (b[0] == '2' && (b[1] < '5' || (b[1] == '5' && b[2] <= '5')))
	}
	return false
}

// validIPv4 reports whether b is exactly a dotted quad.
func validIPv4(b []byte) bool {
	parts := 0
	i := 0
	for {
		j := i
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if !octet(b[i:j]) {
			return false
		}
		parts++
		if j == len(b) {
			return parts == 4
		}
		if b[j] != '.' || parts == 4 {
			return false
		}
		i = j + 1
	}
}
