package mask

// Byte classes, looked up in one 256-entry table so each test is a load and
// a mask rather than a chain of comparisons.
const (
	cDigit    uint16 = 1 << iota // 0-9
	cUpper                       // A-Z
	cLower                       // a-z
	cHex                         // 0-9 a-f A-F
	cWord                        // A-Z a-z 0-9 _
	cB64                         // standard base64 alphabet without padding: A-Z a-z 0-9 + /
	cB64URL                      // base64url alphabet: A-Z a-z 0-9 - _
	cLocal                       // email local part (dot-atom subset): A-Z a-z 0-9 . _ % + -
	cV6                          // IPv6 text: hex digits, ':' and '.' (IPv4 suffix)
	cSpace                       // ASCII white space
	cContSep                     // '.', '-', ':', '/': between the parts of one number
	cNumSep                      // ' ', '-', '.', '(': between the groups of a value
	cColon                       // ':'
	cUnderPre                    // the byte before '_' in a token prefix: gh[pousr]_ github_ [sr]k_ whsec_

	cAlnum = cDigit | cUpper | cLower
)

var class = func() (t [256]uint16) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit | cHex | cWord | cB64 | cB64URL | cLocal | cV6
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= cUpper | cWord | cB64 | cB64URL | cLocal
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cLower | cWord | cB64 | cB64URL | cLocal
	}
	for _, c := range "abcdefABCDEF" {
		t[c] |= cHex | cV6
	}
	t['_'] |= cWord | cB64URL | cLocal
	t['-'] |= cB64URL | cLocal
	t['+'] |= cB64 | cLocal
	t['/'] |= cB64
	t['.'] |= cLocal | cV6
	t['%'] |= cLocal
	t[':'] |= cV6
	for _, c := range ".-:/" {
		t[c] |= cContSep
	}
	for _, c := range " -.(" {
		t[c] |= cNumSep
	}
	t[':'] |= cColon
	for _, c := range "pousrbkc" {
		t[c] |= cUnderPre
	}
	for _, c := range " \t\n\r\v\f" {
		t[c] |= cSpace
	}
	return t
}()

// Trigger bytes: the only bytes at which the scanner leaves its fast loop.
// Every built-in detector is reached through one of them (see scan.go).
const (
	tNone   uint8 = iota
	tDigit        // cards, SSNs, phones, IPv4, IBAN check digits, AWS secrets, ya29 tokens
	tAt           // email
	tColon        // IPv6
	tDot          // JWT (the dot before "eyJ")
	tDash         // PEM armour, Slack and Google OAuth client secrets
	tUnder        // GitHub and Stripe tokens
	tUpperA       // AWS access key ids, Google API keys
)

var trigger = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = tDigit
	}
	t['@'] = tAt
	t[':'] = tColon
	t['.'] = tDot
	t['-'] = tDash
	t['_'] = tUnder
	t['A'] = tUpperA
	return t
}()

func isDigit(c byte) bool { return c-'0' < 10 }
func isWord(c byte) bool  { return class[c]&cWord != 0 }
func isUpper(c byte) bool { return c-'A' < 26 }

// at returns src[i], or 0 when i is out of range; it keeps boundary checks
// at either end of the input short.
func at(src []byte, i int) byte {
	if uint(i) < uint(len(src)) {
		return src[i]
	}
	return 0
}

// hasPrefixAt reports whether src[i:] starts with p.
func hasPrefixAt(src []byte, i int, p string) bool {
	if i < 0 || len(src)-i < len(p) {
		return false
	}
	return string(src[i:i+len(p)]) == p
}

// runOf returns the end of the run of bytes in class c starting at i.
func runOf(src []byte, i int, c uint16) int {
	for i < len(src) && class[src[i]]&c != 0 {
		i++
	}
	return i
}

// runBack returns the start of the run of bytes in class c ending at i
// (exclusive), never going below floor.
func runBack(src []byte, i, floor int, c uint16) int {
	for i > floor && class[src[i-1]]&c != 0 {
		i--
	}
	return i
}
