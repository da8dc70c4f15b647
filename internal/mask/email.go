package mask

// Email addresses: a dot-atom local part (RFC 5322 section 3.4.1, without
// quoted strings or the rarer specials), '@', and a domain of at least two
// DNS labels whose last label (the TLD) is alphabetic or punycode. Asset
// names such as "icon@2x.png" are not addresses, so a few file extensions
// that are not in common use as TLDs are refused.

var fileExt = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range []string{
		"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "heic", "avif",
		"css", "scss", "js", "mjs", "cjs", "ts", "tsx", "jsx", "json", "html", "htm", "txt",
		"yaml", "yml", "xml", "toml", "lock", "pdf", "zip", "gz", "tgz", "tar", "rar",
		"mp3", "mp4", "wav", "mov", "avi", "mkv", "exe", "dll", "dylib", "bin", "log", "csv",
		"ini", "cfg", "conf", "map", "woff", "ttf", "otf", "eot", "rb", "go", "java", "kt",
		"cpp", "hpp", "bat", "sql", "bak", "tmp", "swp", "jar", "whl", "gem", "env", "pem",
	} {
		m[e] = true
	}
	return m
}()

func scanEmail(src []byte, i, floor int) (Finding, int) {
	// Local part: back from '@' over dot-atom bytes.
	lo := i - 65
	if lo < floor {
		lo = floor
	}
	s := runBack(src, i, lo, cLocal)
	if s == lo && lo > floor && class[src[lo-1]]&cLocal != 0 {
		return Finding{}, i + 1 // longer than RFC 5321 allows
	}
	for s < i && (src[s] == '.' || src[s] == '-' || src[s] == '+') {
		s++ // leading punctuation belongs to the surrounding text
	}
	if s == i || src[i-1] == '.' {
		return Finding{}, i + 1
	}
	for k := s; k < i-1; k++ {
		if src[k] == '.' && src[k+1] == '.' {
			return Finding{}, i + 1
		}
	}
	e, ok := domainAt(src, i+1)
	if !ok {
		return Finding{}, i + 1
	}
	return Finding{s, e, Email}, e
}

// domainAt parses a host name of two or more labels at j and returns its
// end. A trailing dot (end of a sentence) is not part of it.
func domainAt(src []byte, j int) (int, bool) {
	start := j
	labels := 0
	lastLabel := j
	for {
		ls := j
		for j < len(src) && (class[src[j]]&cAlnum != 0 || src[j] == '-') {
			j++
		}
		L := j - ls
		if L == 0 || L > 63 || src[ls] == '-' || src[j-1] == '-' || j-start > 253 {
			return 0, false
		}
		labels++
		lastLabel = ls
		if at(src, j) == '.' && class[at(src, j+1)]&cAlnum != 0 {
			j++
			continue
		}
		break
	}
	if labels < 2 || j-start > 253 || isWord(at(src, j)) || at(src, j) == '@' {
		return 0, false
	}
	if !tld(src[lastLabel:j]) {
		return 0, false
	}
	return j, true
}

func tld(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	if len(b) > 4 && (b[0] == 'x' || b[0] == 'X') && (b[1] == 'n' || b[1] == 'N') && b[2] == '-' && b[3] == '-' {
		return true // punycode IDN TLD
	}
	var low [8]byte
	for k, c := range b {
		if class[c]&(cUpper|cLower) == 0 {
			return false
		}
		if k < len(low) {
			low[k] = c | 0x20
		}
	}
	if len(b) <= len(low) && fileExt[string(low[:len(b)])] {
		return false
	}
	return true
}
