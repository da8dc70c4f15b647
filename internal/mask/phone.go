package mask

// Phone numbers in E.164 ("+" and a country calling code, ITU-T E.164) and
// in common national layouts: North American (NANP) numbers, and numbers
// with a trunk prefix 0 as written in the UK, Germany, France, Japan,
// Australia and most of Europe. National numbers must carry their usual
// separators: a bare run of ten digits is far more often an id or a
// timestamp than a phone number.

// cc2 holds the two-digit country calling codes; ccFam3 the two-digit
// prefixes under which three-digit codes are assigned.
var cc2, ccFam3 [100]bool

func init() {
	for _, c := range []int{20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49,
		51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86,
		90, 91, 92, 93, 94, 95, 98} {
		cc2[c] = true
	}
	for _, c := range []int{21, 22, 23, 24, 25, 26, 29, 35, 37, 38, 42, 50, 59, 67, 68, 69,
		80, 85, 87, 88, 96, 97, 99} {
		ccFam3[c] = true
	}
}

// ccLen returns the length of the country calling code that d (digit
// values) starts with, or 0 when no code is assigned there. E.164 codes form
// a prefix code, so at most one length fits.
func ccLen(d []byte) int {
	if len(d) < 3 {
		return 0
	}
	if d[0] == 1 || d[0] == 7 {
		return 1
	}
	p := int(d[0])*10 + int(d[1])
	switch {
	case cc2[p]:
		return 2
	case ccFam3[p]:
		return 3
	}
	return 0
}

// nanp checks a North American area code and exchange (digit values): both
// start with 2-9, neither is an N11 service code, and area codes with a
// middle 9 are reserved for expansion.
func nanp(area, exch []byte) bool {
	if area[0] < 2 || exch[0] < 2 {
		return false
	}
	if area[1] == 1 && area[2] == 1 || exch[1] == 1 && exch[2] == 1 {
		return false
	}
	return area[1] != 9
}

func groupDigits(src []byte, t *numTok, k int, d []byte) []byte {
	for j := t.s[k]; j < t.e[k]; j++ {
		d = append(d, src[j]-'0')
	}
	return d
}

func nanpGroups(src []byte, t *numTok, ka, kx int) bool {
	var a, x [3]byte
	return nanp(groupDigits(src, t, ka, a[:0]), groupDigits(src, t, kx, x[:0]))
}

// phoneE164 checks the token after a '+'. The whole token is tried first,
// then shorter prefixes that end at a space.
func phoneE164(src []byte, t *numTok) int {
	if t.badPar {
		return 0
	}
	for c := t.n; c >= 1; c-- {
		if c < t.n && t.sep[c-1] != ' ' {
			continue
		}
		if c == t.n && t.sep[c-1] != 0 {
			continue // more groups follow than we parsed
		}
		var d [15]byte
		n := 0
		for k := 0; k < c && n >= 0; k++ {
			// "+44 (0)20 ...": the parenthesised trunk 0 is not dialled.
			if k > 0 && t.sep[k-1] == '(' && t.sep[k] == ')' && t.glen(k) == 1 && src[t.s[k]] == '0' {
				continue
			}
			for j := t.s[k]; j < t.e[k]; j++ {
				if n == len(d) {
					n = -1
					break
				}
				d[n] = src[j] - '0'
				n++
			}
		}
		if n < 8 {
			continue
		}
		cl := ccLen(d[:n])
		if cl == 0 {
			return 0
		}
		if c > 1 && t.glen(0) != cl {
			return 0
		}
		switch d[0] {
		case 1:
			if n != 11 || !nanp(d[1:4], d[4:7]) {
				continue
			}
		case 7:
			if n != 11 {
				continue
			}
		}
		if isWord(at(src, t.e[c-1])) {
			continue
		}
		return t.e[c-1]
	}
	return 0
}

// phoneParen checks the token after a '(': "(415) 555-2671" or a trunk
// prefix in parentheses, "(02) 9876 5432".
func phoneParen(src []byte, t *numTok) int {
	if t.n < 2 || t.sep[0] != ')' {
		return 0
	}
	// NANP
	if t.n >= 3 && t.glen(0) == 3 && t.glen(1) == 3 && t.glen(2) == 4 {
		s := t.sep[1]
		if (s == '-' || s == '.' || s == ' ') && t.sep[2] != s && !isWord(at(src, t.e[2])) && nanpGroups(src, t, 0, 1) {
			return t.e[2]
		}
	}
	return trunk(src, t, true)
}

// trunk checks layouts with a trunk prefix 0: "020 7946 0958",
// "0151 23456789", "03-1234-5678", and "(02) 9876 5432" when paren is set.
// The first group holds the prefix and area code; two to four groups in
// all, nine to twelve digits.
func trunk(src []byte, t *numTok, paren bool) int {
	g0 := t.glen(0)
	if g0 < 2 || g0 > 5 || src[t.s[0]] != '0' || src[t.s[0]+1] == '0' || t.n < 2 {
		return 0
	}
	// Groups after the first. Spaces are the European layout; dashes the
	// Japanese one, always ending in four digits.
	var c int
	var s byte
	if paren {
		s = ' '
		if t.n > 2 && t.sep[1] != ' ' {
			return 0
		}
		c = t.chain(1, s)
	} else {
		s = t.sep[0]
		if s != ' ' && s != '-' {
			return 0
		}
		c = t.chain(0, s) - 1
	}
	if c < 1 || c > 3 || s == '-' && (c != 2 || t.glen(2) != 4) {
		return 0
	}
	total := g0
	for k := 1; k <= c; k++ {
		l := t.glen(k)
		if l < 3 || l > 8 {
			return 0
		}
		total += l
	}
	end := t.e[c]
	if total < 9 || total > 12 || s == '-' && total < 10 || s == '-' && total > 11 || isWord(at(src, end)) {
		return 0 // Japanese numbers have ten digits, eleven for mobiles
	}
	return end
}

// phoneNational checks NANP and trunk-prefixed national layouts.
func phoneNational(src []byte, t *numTok) int {
	s := t.sep[0]
	g0 := t.glen(0)
	switch {
	case g0 == 3 && t.n >= 3 && t.glen(1) == 3 && t.glen(2) == 4:
		// 415-555-2671, 415.555.2671, 415 555 2671
		if (s == '-' || s == '.' || s == ' ') && t.sep[1] == s && t.sep[2] != s &&
			!isWord(at(src, t.e[2])) && nanpGroups(src, t, 0, 1) {
			return t.e[2]
		}
	case g0 == 1 && src[t.s[0]] == '1' && t.n >= 4:
		// 1-800-555-0199, 1 (212) 555-0123
		if (s == '-' || s == '.' || s == ' ') && t.sep[1] == s && t.sep[2] == s && t.sep[3] != s &&
			t.glen(1) == 3 && t.glen(2) == 3 && t.glen(3) == 4 &&
			!isWord(at(src, t.e[3])) && nanpGroups(src, t, 1, 2) {
			return t.e[3]
		}
		if s == '(' && t.sep[1] == ')' && t.glen(1) == 3 && t.glen(2) == 3 && t.glen(3) == 4 {
			s2 := t.sep[2]
			if (s2 == '-' || s2 == '.' || s2 == ' ') && t.sep[3] != s2 &&
				!isWord(at(src, t.e[3])) && nanpGroups(src, t, 1, 2) {
				return t.e[3]
			}
		}
	case src[t.s[0]] == '0':
		// France: 01 23 45 67 89 (five pairs).
		if g0 == 2 && (s == ' ' || s == '.' || s == '-') && t.chain(0, s) == 5 {
			ok := true
			for k := 1; k < 5; k++ {
				ok = ok && t.glen(k) == 2
			}
			if ok && src[t.s[0]+1] != '0' && !isWord(at(src, t.e[4])) {
				return t.e[4]
			}
		}
		return trunk(src, t, false)
	}
	return 0
}
