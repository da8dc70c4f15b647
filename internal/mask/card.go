package mask

// Payment card numbers: 13-19 digits, contiguous or in the printed groups
// (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4), that pass the Luhn check and fall in
// a known issuer range (ISO/IEC 7812 IIN) with a length that issuer uses.

// luhn reports whether the digit values in d pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum := 0
	dbl := false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k])
		if dbl {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		dbl = !dbl
	}
	return sum%10 == 0
}

// luhnText is luhn over the ASCII digits of b, ignoring any other byte.
func luhnText(b []byte) bool {
	var d [64]byte
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
	return n > 0 && luhn(d[:n])
}

func prefixValue(d []byte, n int) int {
	v := 0
	for k := 0; k < n && k < len(d); k++ {
		v = v*10 + int(d[k])
	}
	return v
}

// cardIssuer reports whether d (digit values) starts with a known issuer
// identification number and has a length that issuer uses. Sources: the
// networks' published BIN ranges (Visa, Mastercard incl. the 2-series,
// American Express, Discover/Diners/JCB/UnionPay, Maestro, Mir, RuPay, Troy).
func cardIssuer(d []byte) bool {
	L := len(d)
	if L < 13 || L > 19 {
		return false
	}
	p2, p3, p4, p6 := prefixValue(d, 2), prefixValue(d, 3), prefixValue(d, 4), prefixValue(d, 6)
	switch d[0] {
	case 2:
		if p4 >= 2221 && p4 <= 2720 {
			return L == 16 // Mastercard 2-series
		}
		if p4 >= 2200 && p4 <= 2204 {
			return L >= 16 // Mir
		}
	case 3:
		switch {
		case p2 == 34 || p2 == 37:
			return L == 15 // American Express
		case p4 >= 3528 && p4 <= 3589:
			return L >= 16 // JCB
		case p2 == 36:
			return L >= 14 // Diners Club International
		case (p3 >= 300 && p3 <= 305) || p4 == 3095 || p2 == 38 || p2 == 39:
			return L >= 14 // Diners Club
		}
	case 4:
		return L == 13 || L == 16 || L == 19 // Visa
	case 5:
		switch {
		case p2 >= 51 && p2 <= 55:
			return L == 16 // Mastercard
		case p4 == 5018 || p4 == 5020 || p4 == 5038 || p4 == 5893:
			return true // Maestro
		case p4 == 5019 || p3 == 508:
			return L == 16 // Dankort, RuPay
		}
	case 6:
		switch {
		case p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65:
			return L >= 16 // Discover
		case p6 >= 622126 && p6 <= 622925, p2 == 62:
			return L >= 16 // UnionPay
		case p4 == 6304 || p4 == 6759 || p4 == 6761 || p4 == 6762 || p4 == 6763:
			return true // Maestro
		case p3 == 636:
			return L >= 16 // InterPayment
		case p2 == 60:
			return L == 16 // RuPay
		}
	case 9:
		return p4 == 9792 && L == 16 // Troy
	}
	return false
}

// cardPlain checks the contiguous digit run src[i:e0].
func cardPlain(src []byte, i, e0 int) int {
	L := e0 - i
	if L < 13 || L > 19 {
		return 0
	}
	if c := at(src, e0); (c == '-' || c == '.') && isDigit(at(src, e0+1)) {
		return 0 // a decimal fraction or a dashed serial, not a card
	}
	var d [19]byte
	for k := 0; k < L; k++ {
		d[k] = src[i+k] - '0'
	}
	if luhn(d[:L]) && cardIssuer(d[:L]) {
		return e0
	}
	return 0
}

// cardGrouped checks printed forms with a consistent space or dash. The
// whole chain of groups is the number; a shorter prefix is tried only when
// the group after it cannot be part of a printed card: it has one or two
// digits ("4111 1111 1111 1111 12/27"), or it goes on with another
// separator, as the next value ("4111 1111 1111 1111 123-45-6789"). So a
// 19- or 20-digit serial is not read as a card followed by something else.
func cardGrouped(src []byte, t *numTok) int {
	if t.glen(0) != 4 {
		return 0
	}
	s := t.sep[0]
	if s != ' ' && s != '-' {
		return 0
	}
	c := t.chain(0, s)
	if c > 5 {
		c = 5
	}
	for k := c; k >= 3; k-- {
		if k < t.chain(0, s) && t.glen(k) > 2 && (t.sep[k] == 0 || t.sep[k] == s) || !cardShape(t, k) {
			continue
		}
		if k == t.chain(0, s) && isWord(at(src, t.e[k-1])) {
			continue
		}
		var d [19]byte
		n := t.digitsOf(src, 0, k, d[:])
		if n > 0 && luhn(d[:n]) && cardIssuer(d[:n]) {
			return t.e[k-1]
		}
	}
	return 0
}

// cardShape reports whether the first k groups have a printed card layout.
func cardShape(t *numTok, k int) bool {
	if k == 3 {
		a, b, c := t.glen(0), t.glen(1), t.glen(2)
		return a == 4 && b == 6 && (c == 4 || c == 5) // Diners 4-6-4, Amex 4-6-5
	}
	total := 0
	for g := 0; g < k-1; g++ {
		if t.glen(g) != 4 {
			return false
		}
		total += 4
	}
	last := t.glen(k - 1)
	total += last
	if k == 5 {
		return last == 3 // 4-4-4-4-3, the 19-digit layout
	}
	return last >= 1 && last <= 4 && total >= 13 && total <= 19
}
