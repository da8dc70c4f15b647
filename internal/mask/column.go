package mask

import (
	"fmt"
	"path"
	"strings"
)

// ColumnRef names a result column: the Gatehouse connection it came
// through and its schema, table and column. For MySQL the schema is the
// database.
type ColumnRef struct {
	Connection, Schema, Table, Column string
}

type column struct {
	glob     [4]string // connection, schema, table, column; lower case
	st       Strategy  // off means scan
	det      Detector
	clearFor []string
}

func compileColumn(cs ColumnSpec) (column, error) {
	c := column{glob: [4]string{"*", "*", "*", "*"}, clearFor: cs.ClearFor}
	spec := strings.ToLower(strings.TrimSpace(cs.Column))
	if spec == "" {
		return c, fmt.Errorf("column is empty")
	}
	if conn, rest, ok := strings.Cut(spec, "/"); ok {
		c.glob[0], spec = conn, rest
	}
	parts := strings.Split(spec, ".")
	if len(parts) > 3 {
		return c, fmt.Errorf("column %q: want connection/schema.table.column", cs.Column)
	}
	copy(c.glob[4-len(parts):], parts)
	for _, g := range c.glob {
		if _, err := path.Match(g, ""); g == "" || err != nil {
			return c, fmt.Errorf("column %q: bad pattern %q", cs.Column, g)
		}
	}
	switch s := strings.ToLower(strings.TrimSpace(cs.Strategy)); s {
	case "", "scan":
		c.st = off
	default:
		st, err := ParseStrategy(s)
		if err != nil || st == off {
			return c, fmt.Errorf("column %q: unknown strategy %q (want scan, redact, partial, token, null or clear)", cs.Column, cs.Strategy)
		}
		c.st = st
	}
	if cs.Detector != "" {
		d, ok := ParseDetector(cs.Detector)
		if !ok {
			return c, fmt.Errorf("column %q: unknown detector %q", cs.Column, cs.Detector)
		}
		c.det = d
	}
	return c, nil
}

func (c *column) match(ref *[4]string) bool {
	for k, g := range c.glob {
		if g == "*" {
			continue
		}
		if ok, _ := path.Match(g, ref[k]); !ok {
			return false
		}
	}
	return true
}

// ColumnRule is the resolved rule for one column: resolve it once (per
// RowDescription, say) with Masker.Column and apply it to every value.
type ColumnRule struct {
	m    *Masker
	st   Strategy // off: scan the value with the detectors
	det  Detector
	pass bool // values are never changed
}

// Column resolves the rule for a column: the first matching column spec,
// or scanning with the detectors when none matches.
func (m *Masker) Column(ref ColumnRef) ColumnRule {
	key := [4]string{
		strings.ToLower(ref.Connection), strings.ToLower(ref.Schema),
		strings.ToLower(ref.Table), strings.ToLower(ref.Column),
	}
	r := ColumnRule{m: m, pass: m.maskNone}
	for k := range m.sh.columns {
		c := &m.sh.columns[k]
		if !c.match(&key) {
			continue
		}
		r.st, r.det = c.st, c.det
		if m.clearAll() || (m.who != nil && c.st != off && m.who.in(c.clearFor)) {
			r.st = Clear
		}
		r.pass = r.st == Clear || (r.st == off && m.maskNone)
		return r
	}
	return r
}

// Strategy returns the whole-value strategy, or 0 when values are scanned
// with the detectors.
func (r ColumnRule) Strategy() Strategy { return r.st }

// Detector returns the kind of value the column holds, when a rule said.
func (r ColumnRule) Detector() Detector { return r.det }

// Passthrough reports whether values come out unchanged, so the engine
// may skip Apply and forward the bytes it has.
func (r ColumnRule) Passthrough() bool { return r.pass || r.m == nil }

// Apply appends the masked form of one column value to dst. null reports
// that the value must be sent as SQL NULL (the Null strategy).
func (r ColumnRule) Apply(dst, v []byte) (out []byte, null bool) {
	switch {
	case r.m == nil || r.pass:
		return append(dst, v...), false
	case r.st == off:
		return r.m.Mask(dst, v), false
	case r.st == Null:
		return dst, true
	}
	return r.m.replace(dst, r.det, r.st, v), false
}
