package mask

import "bytes"

// IPv6 addresses (RFC 4291 section 2.2 text forms, RFC 5952 compression):
// eight hextets, or fewer with one "::", optionally ending in a dotted
// IPv4 address. Every IPv6 address has at least two colons, so the scanner
// reaches it through ':'. A lone "::" is not reported: it is far more often
// a scope operator than the unspecified address.

const maxIPv6 = 45 // "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"

func scanColon(src []byte, i, floor int) (Finding, int) {
	nx := at(src, i+1)
	if class[nx]&cHex == 0 && nx != ':' {
		return Finding{}, i + 1
	}
	if pv := at(src, i-1); class[pv]&cHex == 0 && pv != ':' && nx != ':' {
		return Finding{}, i + 1
	}
	lo := i - maxIPv6 - 1
	if lo < floor {
		lo = floor
	}
	s := runBack(src, i, lo, cV6)
	hi := i + maxIPv6 + 1
	if hi > len(src) {
		hi = len(src)
	}
	e := i
	for e < hi && class[src[e]]&cV6 != 0 {
		e++
	}
	if s == i-maxIPv6-1 || e == i+maxIPv6+1 {
		// Too long for an address. Every colon of this run would say the
		// same: resume after its last colon.
		e = runOf(src, e, cV6)
		return Finding{}, i + 1 + bytes.LastIndexByte(src[i+1:e], ':') + 1
	}
	// "addr:fe80::1" — a single leading colon separates a label.
	if src[s] == ':' && at(src, s+1) != ':' {
		s++
	}
	for e > s && src[e-1] == '.' {
		e--
	}
	if e-s >= 2 && src[e-1] == ':' && src[e-2] != ':' {
		e-- // "fe80::1:" before a port or in prose
	}
	if s >= e || s > i || isWord(at(src, s-1)) || isWord(at(src, e)) {
		return Finding{}, i + 1
	}
	if !validIPv6(src[s:e]) {
		// Every later colon in this run would give the same run ("10:11:12"
		// takes one look, not two). A dotted quad after the last colon is
		// not skipped.
		last, dots, letters := i, 0, false
		for k := i + 1; k < e; k++ {
			switch c := src[k]; {
			case c == ':':
				last, dots, letters = k, 0, false
			case c == '.':
				dots++
			case !isDigit(c):
				letters = true
			}
		}
		if dots < 3 && !letters {
			return Finding{}, e // "10:11:12.123": no dotted quad, no key id
		}
		return Finding{}, last + 1
	}
	return Finding{s, e, IPv6}, e
}

func validIPv6(b []byte) bool {
	n := len(b)
	if n < 3 || n > maxIPv6 {
		return false
	}
	groups := 0
	dbl := false
	i := 0
	if b[0] == ':' {
		if b[1] != ':' {
			return false
		}
		dbl = true
		i = 2
	}
	for i < n {
		j := i
		for j < n && class[b[j]]&cHex != 0 && b[j] != '.' {
			j++
		}
		if j < n && b[j] == '.' {
			// An embedded IPv4 address takes the last two hextets.
			if groups > 6 || !validIPv4(b[i:]) {
				return false
			}
			groups += 2
			break
		}
		if l := j - i; l == 0 || l > 4 {
			return false
		}
		groups++
		i = j
		if i == n {
			break
		}
		if b[i] != ':' {
			return false
		}
		if i+1 < n && b[i+1] == ':' {
			if dbl {
				return false
			}
			dbl = true
			i += 2
			continue
		}
		i++
		if i == n {
			return false
		}
	}
	if groups == 0 {
		return false
	}
	if dbl {
		return groups <= 7
	}
	return groups == 8
}
