package approval

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Operation is a protocol-neutral description of one held operation: what
// runs, where, and for whom. Its fingerprint covers every field, so an
// approval binds all of it; engines describe the operation and never
// compute the fingerprint themselves.
type Operation struct {
	Connection string `json:"connection"`
	// Database is the database (or namespace, ...) within the connection
	// the operation runs in, when the engine knows one.
	Database string `json:"database,omitempty"`
	// Action is the policy action held, e.g. sql:ddl or mcp:call.
	Action string `json:"action"`
	// Text is exactly what runs: the SQL as the client sent it, literals
	// and all; for a tool call, the tool and its arguments. Parts (a
	// query, then the prepared statements its EXECUTEs run) are separated
	// by NUL, which no part can contain.
	Text   string  `json:"text"`
	Params []Param `json:"params,omitempty"`
	// Principal is the Cedar UID of who asks (Agent::"bot"); OnBehalfOf
	// the human an agent acts for.
	Principal  string `json:"principal"`
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
}

// Param is one parameter value bound to an operation's text.
type Param struct {
	// Format is how Value is encoded, e.g. "text" or "binary": the same
	// bytes in another format are another value.
	Format string
	// Type is the parameter's declared type as the protocol names it (a
	// PostgreSQL type OID); "" when the server infers it.
	Type  string
	Null  bool
	Value []byte
}

// fingerprintVersion starts every fingerprint, so a change to the encoding
// can never make an old approval match a new operation.
const fingerprintVersion = "gatehouse-operation-v1"

// Fingerprint is the SHA-256, in hex, of every field of the operation,
// each length-prefixed so that no two operations encode alike.
func (o Operation) Fingerprint() string {
	h := sha256.New()
	field := func(s string) { writeField(h, []byte(s)) }
	field(fingerprintVersion)
	field(o.Connection)
	field(o.Database)
	field(o.Action)
	field(o.Principal)
	field(o.OnBehalfOf)
	field(o.Text)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(o.Params)))
	h.Write(n[:])
	for _, p := range o.Params {
		field(p.Format)
		field(p.Type)
		if p.Null {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		writeField(h, p.Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// maxShown bounds each parameter value as Describe prints it.
const maxShown = 200

// Describe is the operation as a reviewer reads it: the exact text, then
// each parameter's value, format and type.
func (o Operation) Describe() string {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(o.Text, "\x00", "\n\u2400 then, as prepared: "))
	for i, p := range o.Params {
		fmt.Fprintf(&b, "\n  $%d = %s", i+1, p.shown())
	}
	return b.String()
}

func (p Param) shown() string {
	var v string
	switch {
	case p.Null:
		v = "NULL"
	case p.Format == "text" && utf8.Valid(p.Value):
		v = strconv.Quote(truncate(string(p.Value)))
	default:
		v = `\x` + truncate(hex.EncodeToString(p.Value))
	}
	v += " (" + p.Format
	if p.Type != "" {
		v += ", type " + p.Type
	}
	return v + ")"
}

func truncate(s string) string {
	if len(s) <= maxShown {
		return s
	}
	return s[:maxShown] + fmt.Sprintf("… (%d bytes)", len(s))
}

// paramJSON is a Param as stored and shown: a text value that is valid
// UTF-8 as a string, anything else in hex, so the JSON is readable and
// round-trips the exact bytes.
type paramJSON struct {
	Format string  `json:"format"`
	Type   string  `json:"type,omitempty"`
	Null   bool    `json:"null,omitempty"`
	Value  *string `json:"value,omitempty"`
	Hex    *string `json:"hex,omitempty"`
}

// MarshalJSON writes the value as text when it is text, else as hex.
func (p Param) MarshalJSON() ([]byte, error) {
	j := paramJSON{Format: p.Format, Type: p.Type, Null: p.Null}
	if !p.Null {
		if p.Format == "text" && utf8.Valid(p.Value) {
			s := string(p.Value)
			j.Value = &s
		} else {
			s := hex.EncodeToString(p.Value)
			j.Hex = &s
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Param) UnmarshalJSON(b []byte) error {
	var j paramJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("approval parameter: %w", err)
	}
	*p = Param{Format: j.Format, Type: j.Type, Null: j.Null}
	switch {
	case j.Value != nil:
		p.Value = []byte(*j.Value)
	case j.Hex != nil:
		v, err := hex.DecodeString(*j.Hex)
		if err != nil {
			return fmt.Errorf("approval parameter: %w", err)
		}
		p.Value = v
	}
	return nil
}
