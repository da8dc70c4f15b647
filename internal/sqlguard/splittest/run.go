package splittest

import (
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Outcome is how the server answered one simple Query. Over the simple
// query protocol the server sends one CommandComplete per statement it
// ran, an EmptyQueryResponse instead when the text holds none, and stops
// at the first error (docs: protocol-flow, 55.2.2): the CommandCompletes
// are the server's own statement split.
type Outcome struct {
	Tags []string // CommandComplete tags, one per statement that ran
	// Output holds, per statement that ran, a hash of its row
	// description and rows: equal outputs mean the statement was read
	// alike (for output converted to the same client encoding).
	Output []uint64
	// NonASCII is the index of the first statement whose output holds a
	// byte of 0x80 or above, which the server converts to the client
	// encoding (or cannot); -1 if none.
	NonASCII int
	Empty    bool   // EmptyQueryResponse
	Code     string // SQLSTATE of the ErrorResponse, "" if none
	Message  string
	Tx       byte // transaction status of the ReadyForQuery
}

// Ran reports whether the text ran without error as exactly n statements.
func (o Outcome) Ran(n int) bool {
	return o.Code == "" && len(o.Tags) == n && o.Empty == (n == 0)
}

// String describes o for a test failure.
func (o Outcome) String() string {
	s := fmt.Sprintf("%d statements %v", len(o.Tags), o.Tags)
	if o.Empty {
		s += " (empty)"
	}
	if o.Code != "" {
		s += " then " + o.Code + " " + o.Message
	}
	return s
}

// Send writes text as one simple Query.
func Send(fe *pgproto3.Frontend, text string) error {
	fe.Send(&pgproto3.Query{String: text})
	if err := fe.Flush(); err != nil {
		return fmt.Errorf("splittest: send: %w", err)
	}
	return nil
}

// Read reads the answer to one simple Query, up to its ReadyForQuery.
func Read(fe *pgproto3.Frontend) (Outcome, error) {
	o := Outcome{NonASCII: -1}
	h := fnv.New64a()
	nonASCII := func(b []byte) {
		if o.NonASCII >= 0 {
			return
		}
		for _, c := range b {
			if c >= 0x80 {
				o.NonASCII = len(o.Tags)
				return
			}
		}
	}
	for {
		m, err := fe.Receive()
		if err != nil {
			return o, fmt.Errorf("splittest: receive: %w", err)
		}
		switch m := m.(type) {
		case *pgproto3.RowDescription:
			for _, f := range m.Fields {
				h.Write(f.Name)
				h.Write([]byte{0})
				nonASCII(f.Name)
			}
		case *pgproto3.DataRow:
			h.Write([]byte{'D'})
			for _, v := range m.Values {
				if v == nil {
					h.Write([]byte{'N'})
					continue
				}
				fmt.Fprintf(h, "%d:", len(v))
				h.Write(v)
				nonASCII(v)
			}
		case *pgproto3.CommandComplete:
			o.Tags = append(o.Tags, string(m.CommandTag))
			o.Output = append(o.Output, h.Sum64())
			h.Reset()
		case *pgproto3.EmptyQueryResponse:
			o.Empty = true
		case *pgproto3.ErrorResponse:
			o.Code, o.Message = m.Code, m.Message
		case *pgproto3.ReadyForQuery:
			o.Tx = m.TxStatus
			return o, nil
		}
	}
}

// Exec sends text and reads the answer.
func Exec(fe *pgproto3.Frontend, text string) (Outcome, error) {
	if err := Send(fe, text); err != nil {
		return Outcome{}, err
	}
	return Read(fe)
}
