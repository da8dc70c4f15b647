package mask

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Masker finds and masks sensitive values under a set of rules. Build one
// per deployment with New and share it: it is safe for concurrent use. For
// a principal, derive a view with For once per session.
type Masker struct {
	sh    *shared
	strat [256]Strategy // per detector; off means not looked for
	who   *Principal    // the principal of a view; nil for the base Masker

	builtinOn bool // some built-in detector is on
	maskNone  bool // every detector that is on is Clear: Mask only copies
	passAll   bool // maskNone, and no column rule changes values either
}

// shared is what a Masker and all its views have in common.
type shared struct {
	base     [256]Strategy
	clearFor [256][]string
	names    [256]string
	labels   [256][]byte
	custom   []*custom
	columns  []column
	clear    []string
	maxRepl  int
	macs     *sync.Pool // nil without a key
}

// New compiles rules under the deployment key used for tokens. The key
// must be at least MinKeyLen bytes when any rule uses the token strategy;
// it is copied, never logged and never part of an error.
func New(r *Rules, key []byte) (*Masker, error) {
	if r == nil {
		r = &Rules{}
	}
	sh := &shared{maxRepl: 32, clear: slices.Clone(r.ClearText)}
	if r.MaxReplacement < 0 {
		return nil, errors.New("mask rules: max_replacement must not be negative")
	}
	if r.MaxReplacement > 0 {
		sh.maxRepl = r.MaxReplacement
	}
	for d := Detector(1); d < numBuiltin; d++ {
		sh.names[d] = builtinNames[d]
		sh.labels[d] = []byte("[REDACTED:" + strings.ToUpper(builtinNames[d]) + "]")
	}
	usesToken := false

	if dr, ok := r.Detectors["default"]; ok {
		st, err := ParseStrategy(dr.Strategy)
		if err != nil {
			return nil, fmt.Errorf("mask rules: detectors.default: %w", err)
		}
		for d := Detector(1); d < numBuiltin; d++ {
			sh.base[d], sh.clearFor[d] = st, dr.ClearFor
		}
		usesToken = st == Token
	}
	for _, name := range slices.Sorted(maps.Keys(r.Detectors)) {
		if name == "default" {
			continue
		}
		d, ok := ParseDetector(name)
		if !ok {
			return nil, fmt.Errorf("mask rules: detectors: unknown detector %q", name)
		}
		st, err := ParseStrategy(r.Detectors[name].Strategy)
		if err != nil {
			return nil, fmt.Errorf("mask rules: detectors.%s: %w", name, err)
		}
		sh.base[d], sh.clearFor[d] = st, r.Detectors[name].ClearFor
		usesToken = usesToken || st == Token
	}

	if len(r.Custom) > maxCustom {
		return nil, fmt.Errorf("mask rules: at most %d custom detectors", maxCustom)
	}
	for k, cr := range r.Custom {
		c, err := compileCustom(cr, CustomBase+Detector(k), sh)
		if err != nil {
			return nil, fmt.Errorf("mask rules: custom[%d]: %w", k, err)
		}
		sh.custom = append(sh.custom, c)
		usesToken = usesToken || sh.base[c.id] == Token
	}

	for k, cs := range r.Columns {
		c, err := compileColumn(cs)
		if err != nil {
			return nil, fmt.Errorf("mask rules: columns[%d]: %w", k, err)
		}
		sh.columns = append(sh.columns, c)
		usesToken = usesToken || c.st == Token
	}

	if usesToken && len(key) < MinKeyLen {
		return nil, ErrKeyRequired
	}
	if len(key) > 0 {
		sh.macs = newMacPool(key)
	}
	m := &Masker{sh: sh, strat: sh.base}
	m.refresh()
	return m, nil
}

// ErrKeyRequired is returned by New when a rule uses the token strategy
// and the deployment key is missing or shorter than MinKeyLen bytes.
var ErrKeyRequired = fmt.Errorf("mask: the token strategy needs a deployment key of at least %d bytes", MinKeyLen)

var customName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

func (m *Masker) refresh() {
	m.builtinOn = false
	m.maskNone = true
	for d, st := range m.strat {
		if st == off {
			continue
		}
		if Detector(d) < numBuiltin {
			m.builtinOn = true
		}
		if st != Clear {
			m.maskNone = false
		}
	}
	m.passAll = m.maskNone
	if m.passAll && !m.clearAll() {
		for _, c := range m.sh.columns {
			if c.st != off && c.st != Clear && (m.who == nil || !m.who.in(c.clearFor)) {
				m.passAll = false
			}
		}
	}
}

// Principal is who the data is for. ClearText is set by the caller when
// policy decided this principal may see clear text for the request; the
// rules' clear_text and clear_for lists are matched against ID and Groups.
type Principal struct {
	ID        string
	Groups    []string
	ClearText bool
}

func (p *Principal) in(list []string) bool {
	for _, s := range list {
		if s == p.ID || slices.Contains(p.Groups, s) {
			return true
		}
	}
	return false
}

// For returns the view of m for principal p: detectors (and, through
// Column, column rules) whose clear_for names p leave values clear, and
// everything is clear when policy or the rules' clear_text allow it.
// Derive it once per session, not per value.
func (m *Masker) For(p Principal) *Masker {
	p.Groups = slices.Clone(p.Groups)
	v := &Masker{sh: m.sh, strat: m.sh.base, who: &p}
	all := p.ClearText || p.in(m.sh.clear)
	for d, st := range v.strat {
		if st != off && (all || p.in(m.sh.clearFor[d])) {
			v.strat[d] = Clear
		}
	}
	v.refresh()
	return v
}

// clearAll reports whether this view sees every value in clear.
func (m *Masker) clearAll() bool {
	return m.who != nil && (m.who.ClearText || m.who.in(m.sh.clear))
}

// DetectorName returns the rule-file name of a built-in or custom detector.
func (m *Masker) DetectorName(d Detector) string {
	if n := m.sh.names[d]; n != "" {
		return n
	}
	return d.String()
}

// Strategy returns the strategy this Masker applies to values of d.
func (m *Masker) Strategy(d Detector) Strategy { return m.strat[d] }

func (sh *shared) label(d Detector) []byte {
	if l := sh.labels[d]; l != nil {
		return l
	}
	return genericLabel
}

var genericLabel = []byte("[REDACTED]")

// Find appends to dst the values found in src, in order and without
// overlap, for every detector that is not off. It does not allocate when
// nothing is found or dst has room.
func (m *Masker) Find(src []byte, dst []Finding) []Finding {
	return m.findFrom(src, 0, dst)
}

// findFrom is Find over src[start:], with src[:start] read only as context
// (what precedes a value decides whether it starts there).
func (m *Masker) findFrom(src []byte, start int, dst []Finding) []Finding {
	if len(m.sh.custom) == 0 {
		var st scanState
		for pos := start; ; {
			f := m.nextBuiltin(src, pos, &st)
			if f.Detector == 0 {
				return dst
			}
			dst = append(dst, f)
			pos = f.End
		}
	}
	it := iter{m: m, src: src, pos: start}
	for {
		f := it.next()
		if f.Detector == 0 {
			return dst
		}
		dst = append(dst, f)
	}
}

// Mask appends src to dst with every found value replaced by its
// strategy, and returns the extended buffer. When nothing is found it is
// append(dst, src...), which does not allocate if dst has room.
func (m *Masker) Mask(dst, src []byte) []byte {
	if m.maskNone {
		return append(dst, src...)
	}
	last := 0
	if len(m.sh.custom) == 0 {
		var st scanState
		for pos := 0; ; {
			f := m.nextBuiltin(src, pos, &st)
			if f.Detector == 0 {
				break
			}
			pos = f.End
			if st := m.strat[f.Detector]; st != Clear {
				dst = append(dst, src[last:f.Start]...)
				dst = m.replace(dst, f.Detector, st, src[f.Start:f.End])
				last = f.End
			}
		}
		return append(dst, src[last:]...)
	}
	it := iter{m: m, src: src}
	for {
		f := it.next()
		if f.Detector == 0 {
			break
		}
		if st := m.strat[f.Detector]; st != Clear {
			dst = append(dst, src[last:f.Start]...)
			dst = m.replace(dst, f.Detector, st, src[f.Start:f.End])
			last = f.End
		}
	}
	return append(dst, src[last:]...)
}

// MaskFindings is Mask with the findings already computed by Find on the
// same src, for callers that need both.
func (m *Masker) MaskFindings(dst, src []byte, fs []Finding) []byte {
	last := 0
	for _, f := range fs {
		st := m.strat[f.Detector]
		if st == Clear || st == off || f.Start < last || f.End > len(src) {
			continue
		}
		dst = append(dst, src[last:f.Start]...)
		dst = m.replace(dst, f.Detector, st, src[f.Start:f.End])
		last = f.End
	}
	return append(dst, src[last:]...)
}
