package mask

// IBANs (ISO 13616): a country code, two check digits and a national BBAN,
// compact ("GB82WEST12345698765432") or printed in groups of four
// ("GB82 WEST 1234 5698 7654 32"). The length must be the one registered
// for the country and the whole must pass the ISO 7064 mod-97-10 check.

// ibanLengths is the SWIFT IBAN registry: country code → total length.
var ibanLengths = map[[2]byte]uint8{
	{'A', 'D'}: 24, {'A', 'E'}: 23, {'A', 'L'}: 28, {'A', 'T'}: 20, {'A', 'Z'}: 28,
	{'B', 'A'}: 20, {'B', 'E'}: 16, {'B', 'G'}: 22, {'B', 'H'}: 22, {'B', 'I'}: 27,
	{'B', 'R'}: 29, {'B', 'Y'}: 28, {'C', 'H'}: 21, {'C', 'R'}: 22, {'C', 'Y'}: 28,
	{'C', 'Z'}: 24, {'D', 'E'}: 22, {'D', 'J'}: 27, {'D', 'K'}: 18, {'D', 'O'}: 28,
	{'E', 'E'}: 20, {'E', 'G'}: 29, {'E', 'S'}: 24, {'F', 'I'}: 18, {'F', 'K'}: 18,
	{'F', 'O'}: 18, {'F', 'R'}: 27, {'G', 'B'}: 22, {'G', 'E'}: 22, {'G', 'I'}: 23,
	{'G', 'L'}: 18, {'G', 'R'}: 27, {'G', 'T'}: 28, {'H', 'N'}: 28, {'H', 'R'}: 21,
	{'H', 'U'}: 28, {'I', 'E'}: 22, {'I', 'L'}: 23, {'I', 'Q'}: 23, {'I', 'S'}: 26,
	{'I', 'T'}: 27, {'J', 'O'}: 30, {'K', 'W'}: 30, {'K', 'Z'}: 20, {'L', 'B'}: 28,
	{'L', 'C'}: 32, {'L', 'I'}: 21, {'L', 'T'}: 20, {'L', 'U'}: 20, {'L', 'V'}: 21,
	{'L', 'Y'}: 25, {'M', 'C'}: 27, {'M', 'D'}: 24, {'M', 'E'}: 22, {'M', 'K'}: 19,
	{'M', 'N'}: 20, {'M', 'R'}: 27, {'M', 'T'}: 31, {'M', 'U'}: 30, {'N', 'I'}: 28,
	{'N', 'L'}: 18, {'N', 'O'}: 15, {'O', 'M'}: 23, {'P', 'K'}: 24, {'P', 'L'}: 28,
	{'P', 'S'}: 29, {'P', 'T'}: 25, {'Q', 'A'}: 29, {'R', 'O'}: 24, {'R', 'S'}: 22,
	{'R', 'U'}: 33, {'S', 'A'}: 24, {'S', 'C'}: 31, {'S', 'D'}: 18, {'S', 'E'}: 24,
	{'S', 'I'}: 19, {'S', 'K'}: 24, {'S', 'M'}: 27, {'S', 'O'}: 23, {'S', 'T'}: 25,
	{'S', 'V'}: 28, {'T', 'L'}: 23, {'T', 'N'}: 24, {'T', 'R'}: 26, {'U', 'A'}: 29,
	{'V', 'A'}: 22, {'V', 'G'}: 24, {'X', 'K'}: 20, {'Y', 'E'}: 30,
}

// ibanLen is ibanLengths as a flat table indexed by the two letters, so the
// scanner does not hash.
var ibanLen = func() (t [26 * 26]uint8) {
	for cc, n := range ibanLengths {
		t[int(cc[0]-'A')*26+int(cc[1]-'A')] = n
	}
	return t
}()

func ibanLength(a, b byte) int {
	if !isUpper(a) || !isUpper(b) {
		return 0
	}
	return int(ibanLen[int(a-'A')*26+int(b-'A')])
}

// mod97 reports whether an IBAN (upper-case letters and digits, no spaces)
// passes the ISO 7064 MOD 97-10 check: with the first four characters moved
// to the end and letters read as 10-35, the number is 1 mod 97.
func mod97(b []byte) bool {
	if len(b) < 5 {
		return false
	}
	r := 0
	add := func(c byte) bool {
		switch {
		case isDigit(c):
			r = (r*10 + int(c-'0')) % 97
		case isUpper(c):
			r = (r*100 + int(c-'A') + 10) % 97
		default:
			return false
		}
		return true
	}
	for _, c := range b[4:] {
		if !add(c) {
			return false
		}
	}
	for _, c := range b[:4] {
		if !add(c) {
			return false
		}
	}
	return r == 1
}

// ibanAt returns the end of an IBAN starting at s, or 0.
func ibanAt(src []byte, s int) int {
	if len(src)-s < 15 {
		return 0
	}
	L := ibanLength(src[s], src[s+1])
	if L == 0 || !isDigit(src[s+2]) || !isDigit(src[s+3]) {
		return 0
	}
	var buf [34]byte
	j := s
	spaced := false
	for n := 0; n < L; n++ {
		if n > 0 && n%4 == 0 {
			c := at(src, j)
			if n == 4 && c == ' ' {
				spaced = true
			}
			if spaced {
				if c != ' ' {
					return 0
				}
				j++
			}
		}
		c := at(src, j)
		if !isDigit(c) && !isUpper(c) {
			return 0
		}
		buf[n] = c
		j++
	}
	if isWord(at(src, j)) || !mod97(buf[:L]) {
		return 0
	}
	return j
}

// ibanText validates a value with optional spaces; it backs the "iban"
// validator of custom detectors.
func ibanText(b []byte) bool {
	var buf [34]byte
	n := 0
	for _, c := range b {
		if c == ' ' {
			continue
		}
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if n == len(buf) {
			return false
		}
		buf[n] = c
		n++
	}
	if n < 15 {
		return false
	}
	L := ibanLength(buf[0], buf[1])
	return L == n && mod97(buf[:n])
}
