package mask

// US Social Security numbers, written AAA-GG-SSSS (or with spaces). The SSA
// never issues area 000, 666 or 900-999, group 00 or serial 0000
// (https://www.ssa.gov/employer/randomization.html); a bare nine-digit run is
// not taken as an SSN because order ids and ZIP+4 codes look the same.

// validSSN checks the digit values of area, group and serial.
func validSSN(area, group, serial int) bool {
	return area > 0 && area != 666 && area < 900 && group > 0 && serial > 0
}

func ssnTok(src []byte, t *numTok) int {
	if t.n < 3 || t.glen(0) != 3 || t.glen(1) != 2 || t.glen(2) != 4 {
		return 0
	}
	s := t.sep[0]
	if (s != '-' && s != ' ') || t.sep[1] != s || t.sep[2] == s {
		return 0
	}
	if isWord(at(src, t.e[2])) {
		return 0
	}
	num := func(k int) int {
		v := 0
		for j := t.s[k]; j < t.e[k]; j++ {
			v = v*10 + int(src[j]-'0')
		}
		return v
	}
	if !validSSN(num(0), num(1), num(2)) {
		return 0
	}
	return t.e[2]
}

// ssnText validates a value made of exactly nine digits and optional
// separators; it backs the "ssn" validator of custom detectors.
func ssnText(b []byte) bool {
	var d [9]int
	n := 0
	for _, c := range b {
		if isDigit(c) {
			if n == 9 {
				return false
			}
			d[n] = int(c - '0')
			n++
		}
	}
	if n != 9 {
		return false
	}
	return validSSN(d[0]*100+d[1]*10+d[2], d[3]*10+d[4], d[5]*1000+d[6]*100+d[7]*10+d[8])
}
