package mask

// Values reached through a digit inside a word: IBANs (the check digits
// follow two letters), Google OAuth access tokens ("ya29."), and AWS secret
// access keys.
//
// An AWS secret access key is 40 characters of standard base64 with no
// prefix. It is taken when a key name such as aws_secret_access_key or
// SecretAccessKey precedes it, or, standing alone, when it looks random:
// upper- and lower-case letters and digits, changing character class at
// least minSwitches times between upper case, lower case and digits ('+'
// and '/' do not count), and with at most maxLowerPairs pairs of adjacent
// lower-case letters. Random keys average about 24 changes and 6.6 pairs
// (0.3% of them fail the test: simulated over a million keys); words,
// camel-case identifiers and paths have long lower-case runs, and hex
// digests lack a class.

const (
	awsSecretLen  = 40
	minSwitches   = 14
	maxLowerPairs = 16
)

func scanWordDigit(src []byte, i, floor int) (Finding, int) {
	// One forward pass gives both the end of the word (where scanning
	// resumes) and the end of the base64 run an AWS secret would fill.
	j := runOf(src, i, cAlnum)
	next, e := j, j
	switch at(src, j) {
	case '_':
		next = runOf(src, j, cWord)
	case '+', '/':
		e = runLen(src, j, cB64, max(0, awsSecretLen-(j-i)))
	}
	// IBAN: two upper-case letters at the start of the word, then digits.
	if i-2 >= floor && isUpper(src[i-2]) && isUpper(src[i-1]) && !isWord(at(src, i-3)) {
		if e := ibanAt(src, i-2); e > 0 {
			return Finding{i - 2, e, IBAN}, e
		}
	}
	// Google OAuth 2.0 access token.
	if i-2 >= floor && src[i-2] == 'y' && src[i-1] == 'a' && !isWord(at(src, i-3)) && hasPrefixAt(src, i, "29.") {
		if e := tokenBody(src, i+3, cB64URL, 20, 2048); e > 0 {
			return Finding{i - 2, e, GoogleAPIKey}, e
		}
	}
	// AWS secret access key. A base64url token, padding, or a JWT segment
	// is something else; so is anything longer than a key.
	if e < 0 || e-i > awsSecretLen {
		return Finding{}, next
	}
	switch at(src, e) {
	case '-', '_', '.', '=':
		return Finding{}, next
	}
	lo := i - awsSecretLen
	if lo < floor {
		lo = floor
	}
	s := runBack(src, i, lo, cB64)
	if e-s != awsSecretLen {
		return Finding{}, next
	}
	if s == lo && lo > floor && class[src[lo-1]]&cB64 != 0 {
		return Finding{}, next
	}
	switch at(src, s-1) {
	case '-', '_', '.':
		return Finding{}, next
	}
	if looksRandom(src[s:e]) || secretKeyName(src, s, floor) {
		return Finding{s, e, AWSSecretKey}, e
	}
	return Finding{}, next
}

func looksRandom(b []byte) bool {
	var have uint16
	switches, lowerPairs := 0, 0
	prev := uint16(0)
	for i, c := range b {
		k := class[c] & (cUpper | cLower | cDigit)
		if k == 0 {
			continue // '+' and '/' would make paths look random
		}
		have |= k
		if k != prev {
			switches++
			prev = k
		}
		if k == cLower && i+1 < len(b) && class[b[i+1]]&cLower != 0 {
			lowerPairs++
		}
	}
	return have == cUpper|cLower|cDigit && switches >= minSwitches && lowerPairs <= maxLowerPairs
}

// secretKeyName reports whether the value at s is assigned to a key whose
// name marks an AWS secret key: aws_secret_access_key = ..., "SecretAccessKey": "...".
func secretKeyName(src []byte, s, floor int) bool {
	j := s
	skip := func() {
		for j > floor && (src[j-1] == ' ' || src[j-1] == '\t' || src[j-1] == '"' || src[j-1] == '\'') {
			j--
		}
	}
	skip()
	if j <= floor || (src[j-1] != '=' && src[j-1] != ':' && src[j-1] != '>') {
		return false
	}
	j--
	if j > floor && (src[j-1] == '=' || src[j-1] == ':') {
		j-- // "=>" and ":="
	}
	skip()
	end := j
	for j > floor && end-j < 48 && (isWord(src[j-1]) || src[j-1] == '-' || src[j-1] == '.') {
		j--
	}
	name := src[j:end]
	for _, suffix := range []string{"secret_access_key", "secretaccesskey", "secret-access-key", "aws_secret_key", "aws_secret", "secret_key", "secretkey"} {
		if hasSuffixFold(name, suffix) {
			return true
		}
	}
	return false
}

func hasSuffixFold(b []byte, suffix string) bool {
	if len(b) < len(suffix) {
		return false
	}
	b = b[len(b)-len(suffix):]
	for k := 0; k < len(suffix); k++ {
		c := b[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != suffix[k] {
			return false
		}
	}
	return true
}
