package mask

// The scanner makes one pass over the input. A 256-entry table marks the
// few bytes at which some value can start or be anchored (digits, '@', ':',
// '.', '-', '_', 'A'); the fast loop skips everything else eight bytes at a
// time. At a trigger byte a handler does a constant-time check (the bytes
// around it) before any longer parse, and returns either a finding or
// where to resume. Handlers may look back from the trigger, never below
// floor: the end of the previous finding, so findings never overlap.

// scanState is what one pass over an input remembers between findings.
type scanState struct {
	// pemSearched: no private-key END line starts in [pemFrom, pemSearched),
	// so a later BEGIN need not search that stretch again. Without it,
	// many BEGIN lines with no END would make the scan quadratic.
	pemFrom, pemSearched int
}

// nextBuiltin returns the first value found by an enabled built-in detector
// at or after pos, or a Finding with Detector 0.
func (m *Masker) nextBuiltin(src []byte, pos int, st *scanState) Finding {
	if !m.builtinOn {
		return Finding{}
	}
	floor, i, n := pos, pos, len(src)
	for i < n {
		for n-i >= 8 {
			b := src[i : i+8 : i+8]
			if trigger[b[0]]|trigger[b[1]]|trigger[b[2]]|trigger[b[3]]|
				trigger[b[4]]|trigger[b[5]]|trigger[b[6]]|trigger[b[7]] != tNone {
				break
			}
			i += 8
		}
		for i < n && trigger[src[i]] == tNone {
			i++
		}
		if i >= n {
			break
		}
		// Each case first rejects the common harmless byte inline, so most
		// trigger bytes cost a compare or two and no call.
		var f Finding
		var next int
		switch trigger[src[i]] {
		case tDigit:
			pv := at(src, i-1)
			if class[pv]&cContSep != 0 && isDigit(at(src, i-2)) {
				// The middle of a larger number: "2024-01-15", "10:23",
				// "3.14". Nothing we detect starts there.
				i = runOf(src, i+1, cDigit)
				continue
			}
			if isWord(pv) {
				f, next = scanWordDigit(src, i, floor)
				break
			}
			// A short number that no separator joins to another group
			// ("status=200 ") is nothing: values of one group are cards
			// (13+ digits) or follow '+' or '('.
			e0 := runOf(src, i+1, cDigit)
			if c := at(src, e0); e0-i < 13 && pv != '+' && pv != '(' && !isWord(c) {
				c1 := at(src, e0+1)
				if class[c]&cNumSep == 0 || !isDigit(c1) && c1 != '(' {
					i = e0
					continue
				}
			}
			f, next = scanNumber(src, i, floor)
		case tAt:
			f, next = scanEmail(src, i, floor)
		case tColon:
			// An IPv6 colon has a hex digit or colon after it, and before
			// it unless "::" starts here: not "key: value", "http://",
			// or JSON's "key":1.
			nx := at(src, i+1)
			if class[nx]&cHex == 0 && nx != ':' || nx != ':' && class[at(src, i-1)]&(cHex|cColon) == 0 {
				i++
				continue
			}
			f, next = scanColon(src, i, floor)
		case tDot:
			if at(src, i+1) != 'e' {
				i++
				continue
			}
			f, next = scanDot(src, i, floor)
		case tDash:
			if at(src, i+1) != '-' && at(src, i-4) != 'x' && at(src, i-6) != 'G' {
				i++ // not "-----BEGIN", "xoxb-" or "GOCSPX-"
				continue
			}
			f, next = scanDash(src, i, floor, st)
		case tUnder:
			if class[at(src, i-1)]&cUnderPre == 0 {
				i++ // snake_case, not gh?_, github_, sk_, rk_ or whsec_
				continue
			}
			f, next = scanUnder(src, i, floor)
		case tUpperA:
			if i > 0 && isWord(src[i-1]) {
				i++
				continue
			}
			f, next = scanUpperA(src, i, floor)
		}
		if f.Detector != 0 {
			if m.strat[f.Detector] != off {
				return f
			}
			// A disabled detector still consumes its value, so another
			// detector does not report a fragment of it.
			floor = f.End
			next = f.End
		}
		if next <= i {
			next = i + 1
		}
		i = next
	}
	return Finding{}
}

// iter merges built-in findings with custom detectors' matches: the
// earliest start wins, a custom detector on a tie.
type iter struct {
	m     *Masker
	src   []byte
	pos   int
	st    scanState
	bi    Finding
	biOK  bool
	cs    [maxCustom]Finding
	csOK  [maxCustom]bool
	csEnd [maxCustom]bool // no more matches
}

func (it *iter) next() Finding {
	if !it.biOK || (it.bi.Detector != 0 && it.bi.Start < it.pos) {
		it.bi = it.m.nextBuiltin(it.src, it.pos, &it.st)
		it.biOK = true
	}
	best := it.bi
	for k, c := range it.m.sh.custom {
		if it.m.strat[c.id] == off || it.csEnd[k] {
			continue
		}
		if !it.csOK[k] || it.cs[k].Start < it.pos {
			f, ok := c.next(it.src, it.pos)
			it.cs[k], it.csOK[k], it.csEnd[k] = f, ok, !ok
			if !ok {
				continue
			}
		}
		// Earliest start wins; on a tie a custom detector beats a
		// built-in one, and an earlier custom detector a later one.
		f := it.cs[k]
		if best.Detector == 0 || f.Start < best.Start || f.Start == best.Start && best.Detector < CustomBase {
			best = f
		}
	}
	if best.Detector != 0 {
		it.pos = best.End
	}
	return best
}
