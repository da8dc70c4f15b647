package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
)

// parseParamTypes reads the rest of a Parse after its query string: a
// count, then that many type OIDs (PostgreSQL docs, "Message Formats",
// Parse).
func parseParamTypes(b []byte) ([]uint32, error) {
	n, b, err := readInt16(b)
	if err != nil || n < 0 || len(b) != 4*int(n) {
		return nil, errors.New("bad parameter types")
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return out, nil
}

// operation describes one execution of the statement for approval: text,
// the exact text that runs (the Parse's, with what its EXECUTEs run), and
// each bound parameter with its format and declared type. The portal,
// statement names and result formats are left out: they do not change what
// runs. b must be owned (own): the operation keeps its values.
func (d *stmtDef) operation(text string, b bindMsg) approval.Operation {
	op := approval.Operation{Text: text, Params: make([]approval.Param, len(b.params))}
	for i, v := range b.params {
		pm := approval.Param{Format: formatName(b.paramFormat(i)), Null: v == nil, Value: v}
		if i < len(d.types) && d.types[i] != 0 {
			pm.Type = strconv.FormatUint(uint64(d.types[i]), 10)
		}
		op.Params[i] = pm
	}
	return op
}

// own makes the Bind the engine's own copy before it waits on a hold:
// until then it lies in the read buffer, which the client's next bytes
// refill during the wait, and what was approved must be what is forwarded.
func (m *bindMsg) own() error {
	if m.owned != nil {
		return nil
	}
	msg := append([]byte(m.portal), 0)
	msg = append(msg, m.stmt...)
	msg = append(msg, 0)
	msg = append(msg, m.values...)
	owned, err := parseBind(msg)
	if err != nil {
		return fmt.Errorf("bind copy: %w", err) // the same bytes parsed before: cannot be
	}
	*m = owned
	m.owned = msg
	return nil
}

// paramFormat is the format code of parameter i: no codes, all text; one,
// it applies to every parameter; else one each (PostgreSQL docs, "Message
// Formats", Bind). A Bind with another count fails upstream; -1 names it.
func (m bindMsg) paramFormat(i int) int16 {
	switch {
	case len(m.paramFormats) == 0:
		return 0
	case len(m.paramFormats) == 1:
		return m.paramFormats[0]
	case i < len(m.paramFormats):
		return m.paramFormats[i]
	}
	return -1
}

func formatName(f int16) string {
	switch f {
	case 0:
		return "text"
	case 1:
		return "binary"
	}
	return "format " + strconv.Itoa(int(f))
}
