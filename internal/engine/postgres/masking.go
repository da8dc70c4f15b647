package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/mask"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Type OIDs whose binary format is the text itself (PostgreSQL's
// pg_type.dat), so the detectors can scan them in either format.
var textTypes = map[uint32]bool{
	25: true, 1043: true, 1042: true, 19: true, 114: true, 142: true, 705: true, 18: true,
	3802: true, // jsonb: a version byte, then text
}

const jsonbOID = 3802

// rowPlan says how to mask each column of the rows of one result.
type rowPlan struct {
	cols []colPlan
	fs   []mask.Finding
}

type colPlan struct {
	rule mask.ColumnRule
	// null: a whole-value rule on a binary value, which cannot be rewritten
	// in place, so it is sent as NULL rather than passed through.
	null bool
	// scan: run the rule (or the detectors) over the bytes.
	scan bool
	// skip is a prefix left as is (jsonb's version byte).
	skip int
}

// planRows resolves the masking of a result's columns once, looking up
// the tables and column names of columns that come from tables when
// column rules exist. A nil plan means rows pass unchanged.
func (s *session) planRows(ctx context.Context, fields []pgproto3.FieldDescription) (*rowPlan, error) {
	m := s.masker
	if m == nil || m.MasksNothing() {
		return nil, nil
	}
	var names map[colKey]colName
	if m.HasColumnRules() {
		var err error
		if names, err = s.columnNames(ctx, fields); err != nil {
			return nil, err
		}
	}
	p := &rowPlan{cols: make([]colPlan, len(fields))}
	active := false
	for i, f := range fields {
		n := names[colKey{f.TableOID, f.TableAttributeNumber}]
		rule := m.Column(mask.ColumnRef{Connection: s.gs.Connection, Schema: n.schema, Table: n.table, Column: n.column})
		c := colPlan{rule: rule}
		switch {
		case rule.Passthrough():
		case f.Format == 0:
			c.scan = true
		case rule.Strategy() != 0:
			c.null = true
		case textTypes[f.DataTypeOID]:
			c.scan = true
			if f.DataTypeOID == jsonbOID {
				c.skip = 1
			}
		}
		active = active || c.scan || c.null
		p.cols[i] = c
	}
	if !active {
		return nil, nil
	}
	return p, nil
}

// maskRow masks one DataRow body into dst. When nothing changes it returns
// body itself. Every count and length is validated against the message.
func (p *rowPlan) maskRow(dst, body []byte) ([]byte, error) {
	if len(body) < 2 {
		return nil, errors.New("short row")
	}
	n := int(binary.BigEndian.Uint16(body))
	if n != len(p.cols) {
		return nil, fmt.Errorf("row has %d columns, its description %d", n, len(p.cols))
	}
	dst = append(dst, body[:2]...)
	rest := body[2:]
	changed := false
	for i := range n {
		if len(rest) < 4 {
			return nil, errors.New("short row")
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l == -1 {
			dst = append(dst, 0xff, 0xff, 0xff, 0xff)
			continue
		}
		if l < 0 || int(l) > len(rest) {
			return nil, errors.New("bad value length")
		}
		v := rest[:l]
		rest = rest[l:]
		c := &p.cols[i]
		switch {
		case c.null:
			dst = append(dst, 0xff, 0xff, 0xff, 0xff)
			changed = true
			continue
		case !c.scan || len(v) <= c.skip:
			dst = appendValue(dst, v)
			continue
		}
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = append(dst, v[:c.skip]...)
		out, null := c.rule.Apply(dst, v[c.skip:])
		if null {
			dst = append(out[:at], 0xff, 0xff, 0xff, 0xff)
			changed = true
			continue
		}
		dst = out
		vlen := len(dst) - at - 4
		binary.BigEndian.PutUint32(dst[at:], uint32(vlen))
		if !changed && (vlen != len(v) || string(dst[at+4:]) != string(v)) {
			changed = true
		}
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes in row")
	}
	if !changed {
		return body, nil
	}
	return dst, nil
}

func appendValue(dst, v []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
	return append(dst, v...)
}

// maskNotice masks the human-readable fields of an ErrorResponse or
// NoticeResponse, which can quote data ("Key (email)=(...) already exists").
func (s *session) maskNotice(body []byte) []byte {
	var out []byte
	changed := false
	rest := body
	for len(rest) > 0 && rest[0] != 0 {
		code := rest[0]
		v, r, ok := cstring(rest[1:])
		if !ok {
			return body // malformed: the client's decoder will say so
		}
		rest = r
		out = append(out, code)
		switch code {
		case 'S', 'V', 'C', 'P', 'p', 'F', 'L', 'R':
			// Severity, code, positions and the server's source
			// location: no value of the client's data.
			out = append(out, v...)
		default:
			// Message, detail, hint, context, internal query, and the
			// names of schema, table, column, type and constraint.
			before := len(out)
			out = s.masker.Mask(out, []byte(v))
			changed = changed || string(out[before:]) != v
		}
		out = append(out, 0)
	}
	if !changed {
		return body
	}
	return append(out, 0)
}

// maskNotification masks a NOTIFY payload.
func (s *session) maskNotification(dst, body []byte) []byte {
	if len(body) < 4 {
		return body
	}
	ch, rest, ok := cstring(body[4:])
	if !ok {
		return body
	}
	payload, _, ok := cstring(rest)
	if !ok {
		return body
	}
	dst = append(dst, body[:4]...)
	dst = append(dst, ch...)
	dst = append(dst, 0)
	dst = s.masker.Mask(dst, []byte(payload))
	return append(dst, 0)
}
