package mask

import "bytes"

// Credentials recognised by their documented prefixes and shapes:
//   - AWS access key ids: AKIA/ASIA/... + 16 upper-case alphanumerics
//     (IAM identifiers, "Understanding unique ID prefixes").
//   - GitHub: ghp_ gho_ ghu_ ghs_ ghr_ + 36 alphanumerics, github_pat_ +
//     82 (github.blog 2021-04-05, "Behind GitHub's new authentication token formats").
//   - Slack: xoxb- xoxp- xoxa- xoxr- xoxs- xoxe- xapp- (api.slack.com/authentication/token-types).
//   - Stripe: sk_live_ sk_test_ rk_live_ rk_test_ whsec_ (stripe.com/docs/keys).
//   - Google: AIza + 35 (API keys), ya29. (OAuth access tokens), GOCSPX- (OAuth client secrets).
//   - JWTs (RFC 7519): base64url header "eyJ...", payload "eyJ...", signature.
//   - PEM private keys (RFC 7468): "-----BEGIN ... PRIVATE KEY-----" to the
//     next private-key END line. A block with no END line is masked to the end of
//     its base64 body, so a truncated key fails closed.
// AWS secret access keys have no prefix; see word.go.

// runLen is the end of the run of class c at i, but at most max bytes on;
// it returns -1 when the run is longer than max.
func runLen(src []byte, i int, c uint16, max int) int {
	hi := i + max
	if hi > len(src) {
		hi = len(src)
	}
	j := i
	for j < hi && class[src[j]]&c != 0 {
		j++
	}
	if j == i+max && class[at(src, j)]&c != 0 {
		return -1
	}
	return j
}

// tokenBody accepts a body of class c, min..max long, starting at j, and
// returns its end or 0.
func tokenBody(src []byte, j int, c uint16, min, max int) int {
	e := runLen(src, j, c, max)
	if e < 0 || e-j < min {
		return 0
	}
	return e
}

func hasDigit(b []byte) bool {
	for _, c := range b {
		if isDigit(c) {
			return true
		}
	}
	return false
}

func scanUpperA(src []byte, i, floor int) (Finding, int) {
	if isWord(at(src, i-1)) || len(src)-i < 20 {
		return Finding{}, i + 1
	}
	switch string(src[i : i+4]) {
	case "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA", "APKA":
		e := i + 4
		for e < i+20 && (isUpper(src[e]) || isDigit(src[e])) {
			e++
		}
		if e == i+20 && !isWord(at(src, e)) {
			return Finding{i, e, AWSAccessKey}, e
		}
	case "AIza":
		if e := tokenBody(src, i+4, cB64URL, 35, 35); e > 0 {
			return Finding{i, e, GoogleAPIKey}, e
		}
	}
	return Finding{}, i + 1
}

func scanUnder(src []byte, i, floor int) (Finding, int) {
	// ghp_, gho_, ghu_, ghs_, ghr_
	if i-3 >= floor && src[i-3] == 'g' && src[i-2] == 'h' && !isWord(at(src, i-4)) {
		switch src[i-1] {
		case 'p', 'o', 'u', 's', 'r':
			if e := tokenBody(src, i+1, cAlnum, 36, 251); e > 0 && !isWord(at(src, e)) {
				return Finding{i - 3, e, GitHubToken}, e
			}
		}
	}
	// github_pat_
	if i-6 >= floor && string(src[i-6:i]) == "github" && hasPrefixAt(src, i+1, "pat_") && !isWord(at(src, i-7)) {
		if e := tokenBody(src, i+5, cWord, 70, 251); e > 0 {
			return Finding{i - 6, e, GitHubToken}, e
		}
	}
	// sk_live_, sk_test_, rk_live_, rk_test_
	if i-2 >= floor && (src[i-2] == 's' || src[i-2] == 'r') && src[i-1] == 'k' && !isWord(at(src, i-3)) &&
		(hasPrefixAt(src, i+1, "live_") || hasPrefixAt(src, i+1, "test_")) {
		if e := tokenBody(src, i+6, cAlnum, 24, 247); e > 0 && !isWord(at(src, e)) {
			return Finding{i - 2, e, StripeKey}, e
		}
	}
	// whsec_
	if i-5 >= floor && string(src[i-5:i]) == "whsec" && !isWord(at(src, i-6)) {
		if e := tokenBody(src, i+1, cAlnum, 32, 128); e > 0 && !isWord(at(src, e)) {
			return Finding{i - 5, e, StripeKey}, e
		}
	}
	return Finding{}, i + 1
}

var (
	pemBegin = []byte("-----BEGIN ")
	pemEnd   = []byte("-----END ")
)

func privateLabel(label []byte) bool {
	return bytes.HasSuffix(label, []byte("PRIVATE KEY")) || bytes.HasSuffix(label, []byte("PRIVATE KEY BLOCK"))
}

func scanDash(src []byte, i, floor int, st *scanState) (Finding, int) {
	if at(src, i+1) == '-' && at(src, i-1) != '-' && hasPrefixAt(src, i, "-----BEGIN ") {
		if f, ok := scanPEM(src, i, st); ok {
			return f, f.End
		}
	}
	// Slack: the four bytes before the dash are the token type.
	if i-4 >= floor && !isWord(at(src, i-5)) {
		switch string(src[i-4 : i]) {
		case "xoxb", "xoxp", "xoxa", "xoxr", "xoxs", "xoxe", "xapp":
			if e := tokenBody(src, i+1, cB64URL, 15, 255); e > 0 && hasDigit(src[i+1:e]) {
				return Finding{i - 4, e, SlackToken}, e
			}
		}
	}
	// Google OAuth client secret.
	if i-6 >= floor && string(src[i-6:i]) == "GOCSPX" && !isWord(at(src, i-7)) {
		if e := tokenBody(src, i+1, cB64URL, 24, 64); e > 0 {
			return Finding{i - 6, e, GoogleAPIKey}, e
		}
	}
	// Skip the rest of a run of dashes (rules, YAML document markers).
	j := i + 1
	for j < len(src) && src[j] == '-' {
		j++
	}
	return Finding{}, j
}

// scanPEM handles "-----BEGIN <label>-----" at i. The block ends at the
// next END line of a private key, whatever its label says.
func scanPEM(src []byte, i int, st *scanState) (Finding, bool) {
	ls := i + len(pemBegin)
	le := ls
	for le < len(src) && le-ls <= 40 && (isUpper(src[le]) || src[le] == ' ' || isDigit(src[le])) {
		le++
	}
	label := src[ls:le]
	if !hasPrefixAt(src, le, "-----") || !privateLabel(label) {
		return Finding{}, false
	}
	body := le + 5
	k := body
	if st.pemFrom <= body && body < st.pemSearched {
		k = st.pemSearched
	}
	if e := pemContinue(src, k); e >= 0 {
		return Finding{i, e, PrivateKey}, true
	}
	st.pemFrom, st.pemSearched = body, len(src)
	// No END line: mask the base64 body (and any "Proc-Type:"-style headers
	// and escaped newlines) that follows.
	e := body
	for e < len(src) {
		c := src[e]
		if class[c]&(cB64|cSpace) != 0 || c == '=' || c == '\\' || c == ':' || c == ',' || c == '-' {
			e++
			continue
		}
		break
	}
	return Finding{i, e, PrivateKey}, true
}

// scanDot handles '.', which separates the header and payload of a JWT. A
// JWT payload is a JSON object, so its base64url form starts with "eyJ":
// checking that first keeps the cost of the many dots in prose to a compare.
func scanDot(src []byte, i, floor int) (Finding, int) {
	if !hasPrefixAt(src, i+1, "eyJ") || class[at(src, i-1)]&cB64URL == 0 {
		return Finding{}, i + 1
	}
	s := runBack(src, i, floor, cB64URL)
	if i-s < 10 || !hasPrefixAt(src, s, "eyJ") || at(src, s-1) == '.' {
		return Finding{}, i + 1
	}
	p := runOf(src, i+1, cB64URL)
	if p-i-1 < 10 || at(src, p) != '.' {
		return Finding{}, i + 1
	}
	e := runOf(src, p+1, cB64URL) // the signature; empty for "alg":"none"
	// A JWE has five parts; take them all.
	for parts := 3; parts < 5 && at(src, e) == '.' && class[at(src, e+1)]&cB64URL != 0; parts++ {
		e = runOf(src, e+1, cB64URL)
	}
	return Finding{s, e, JWT}, e
}
