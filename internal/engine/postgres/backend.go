package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// backState is what the backend goroutine knows about result shapes.
type backState struct {
	stmtDesc   map[string][]pgproto3.FieldDescription // from Describe of a statement (formats not yet known)
	portalDesc map[string][]pgproto3.FieldDescription // with the formats the portal returns
	plan       *rowPlan                               // how to mask the rows now arriving
	planFor    *expect                                // the Execute the plan was built for
	rd         pgproto3.RowDescription
}

func newBackState() *backState {
	return &backState{stmtDesc: map[string][]pgproto3.FieldDescription{}, portalDesc: map[string][]pgproto3.FieldDescription{}}
}

// backend reads upstream messages, keeps the response queue in step,
// masks rows and swaps the errors of denied statements.
func (s *session) backend(ctx context.Context) error {
	buf := make([]byte, 0, 8<<10)
	for {
		typ, body, err := s.ur.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errUpstreamEOF
			}
			return err
		}
		out := body // what the client gets, unless replaced
		forward := true
		if x := s.head(); x != nil && x.injected {
			// The gateway's own query: nobody else is owed its answers.
			if forward, err = s.onInjected(typ, body); err != nil {
				return err
			}
			if !forward {
				goto deliver
			}
		}
		switch typ {
		case 'S': // ParameterStatus
			if err := s.onParameterStatus(body); err != nil {
				return err
			}
		case '1', '2', '3': // ParseComplete, BindComplete, CloseComplete
			x := s.popConfirm(typ)
			if typ == '2' && x != nil && x.kind == 'B' {
				s.bindComplete(x)
			}
			if typ == '3' && x != nil && x.kind == 'C' {
				s.closeComplete(x)
			}
		case 't': // ParameterDescription: part of a statement Describe
		case 'T':
			if err := s.be.rd.Decode(body); err != nil {
				return fmt.Errorf("upstream RowDescription: %w", err)
			}
			if x := s.head(); x != nil && x.kind == 'D' {
				s.pop()
				// Kept past this message: copy out of the read buffer.
				if x.describe == 'S' {
					s.be.stmtDesc[x.name] = cloneFields(s.be.rd.Fields)
				} else {
					s.be.portalDesc[x.name] = cloneFields(s.be.rd.Fields)
				}
				forward = !x.swallow
			} else {
				// A simple query's result: its rows follow now, planned
				// from the description in hand.
				if s.be.plan, err = s.planRows(ctx, s.be.rd.Fields); err != nil {
					return err
				}
				s.be.planFor = nil
			}
		case 'n': // NoData
			if x := s.head(); x != nil && x.kind == 'D' {
				s.pop()
				if x.describe == 'P' {
					s.be.portalDesc[x.name] = nil
				}
				forward = !x.swallow
			}
		case 'D':
			if x := s.head(); x != nil && x.kind == 'E' && s.be.planFor != x {
				fields, known := s.be.portalDesc[x.name]
				if !known {
					return errors.New("rows for a portal whose columns are unknown")
				}
				if s.be.plan, err = s.planRows(ctx, fields); err != nil {
					return err
				}
				s.be.planFor = x
			}
			if s.be.plan != nil {
				// maskRow returns body itself when nothing changed: keep
				// buf our own so it never aliases the read buffer.
				res, err := s.be.plan.maskRow(buf[:0], body)
				if err != nil {
					return fmt.Errorf("upstream DataRow: %w", err)
				}
				if len(res) > 0 && len(body) > 0 && &res[0] != &body[0] {
					buf = res[:0]
				}
				out = res
			}
		case 'C', 's', 'I': // CommandComplete, PortalSuspended, EmptyQueryResponse
			x := s.head()
			if x != nil {
				if typ == 'C' && x.rec != nil {
					x.rec.Rows += commandRows(body)
				}
				if typ == 'C' {
					if x.copyIn {
						s.copyEnded(x, false)
					}
					s.completed(x)
				}
				if x.kind == 'E' {
					s.pop()
					s.finish(x, "")
				}
			}
			s.be.plan, s.be.planFor = nil, nil
		case 'E':
			if x := s.head(); x != nil && x.copyIn {
				if err := s.copyEnded(x, true); err != nil {
					return err
				}
			}
			out = s.onUpstreamError(body)
			s.be.plan, s.be.planFor = nil, nil
		case 'Z':
			for _, x := range s.readyForQuery(body) {
				s.finish(x, "")
			}
			s.be.plan, s.be.planFor = nil, nil
		case 'd': // CopyData from a COPY ... TO STDOUT
			if s.masker != nil {
				buf = s.masker.Mask(buf[:0], body)
				out = buf
			}
		case 'A': // NotificationResponse: the payload may carry data
			if s.masker != nil {
				out = s.maskNotification(buf[:0], body)
			}
		case 'N': // NoticeResponse: messages may quote values
			if s.masker != nil {
				out = s.maskNotice(body)
			}
		case 'H': // CopyOutResponse
			if len(body) > 0 && body[0] == 1 && s.masker != nil {
				return &fatal{code: codeFeatureNotSupported, msg: "gatehouse: binary COPY TO is not allowed while results are masked; use text or csv format"}
			}
		case 'G': // CopyInResponse: the upstream now reads COPY data
			if x := s.head(); x != nil && (x.kind == 'E' || x.kind == 'Q') {
				s.mu.Lock()
				x.copyIn = true
				s.mu.Unlock()
			}
		}
	deliver:
		s.cwMu.Lock()
		if forward {
			if err := writeFrame(s.cw, typ, out); err != nil {
				s.cwMu.Unlock()
				return fmt.Errorf("write client: %w", err)
			}
		}
		if !s.ur.buffered() {
			if err := s.cw.Flush(); err != nil {
				s.cwMu.Unlock()
				return fmt.Errorf("write client: %w", err)
			}
		}
		s.cwMu.Unlock()
	}
}

// copyEnded drops the Syncs the upstream ignored because it read them in
// COPY FROM STDIN mode (copyfromparse.c reads and drops Sync and Flush
// while copying). After a successful COPY every Sync sent during it was
// read in copy mode. After an error the upstream stops reading COPY data
// where the error struck, and the next Sync it reads ends the error: a
// Sync sent before any CopyData was certainly read in copy mode, but one
// sent after some may have been read either way, and the session cannot
// be followed any more.
func (s *session) copyEnded(x *expect, failed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x.copyIn = false
	kept := s.queue[:0]
	var unsure bool
	for _, y := range s.queue {
		if y.kind == 'S' && y.copyOf == x {
			if failed && y.afterData {
				unsure = true
			} else {
				continue
			}
		}
		kept = append(kept, y)
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	s.broadcastLocked()
	if unsure {
		return &fatal{code: codeProtocolViolation, msg: "gatehouse: a Sync sent during COPY FROM STDIN after its data, and the COPY failed: the session cannot be followed; send Sync only after CopyDone"}
	}
	return nil
}

// popConfirm pops the expectation a ParseComplete, BindComplete or
// CloseComplete answers and, in the same critical section, applies what
// it confirms to the model of prepared statements, so the frontend never
// sees the one without the other.
func (s *session) popConfirm(typ byte) *expect {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.popLocked()
	switch {
	case x == nil:
	case typ == '1' && x.kind == 'P' && x.def != nil:
		s.defs[x.name] = x.def
		delete(s.be.stmtDesc, x.name) // a Describe after this Parse fills it again
	case typ == '3' && x.kind == 'C' && x.describe == 'S':
		delete(s.defs, x.name)
		delete(s.be.stmtDesc, x.name)
	}
	return x
}

// completed applies what a CommandComplete confirms: the effects of the
// simple-query statement it ends (counted) or of the Execute, and a
// possibly changed schema.
func (s *session) completed(x *expect) {
	s.mu.Lock()
	switch x.kind {
	case 'Q':
		var now []stmtEffect
		for _, ef := range x.effects {
			if ef.stmt == x.ccSeen {
				now = append(now, ef)
			}
		}
		s.applyEffects(now)
		x.ccSeen++
	case 'E':
		s.applyEffects(x.effects)
	}
	if x.schema {
		s.schemaDirty = true
	}
	s.broadcastLocked()
	s.mu.Unlock()
	if x.schema {
		s.invalidateCatalog()
	}
}

// readyForQuery ends a simple query or an extended batch: it pops through
// the Query or Sync answered, and returns what it popped. A simple query
// has destroyed the unnamed statement; the settings the server reported
// just before are now the session's.
func (s *session) readyForQuery(body []byte) []*expect {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*expect
	for {
		x := s.popLocked()
		if x == nil {
			break
		}
		out = append(out, x)
		if x.kind == 'Q' {
			delete(s.defs, "")
			delete(s.be.stmtDesc, "")
		}
		if x.kind == 'Q' || x.kind == 'S' {
			break
		}
	}
	s.lex.ranSinceRFQ = false
	if len(body) > 0 {
		s.txStatus = body[0]
	}
	if s.schemaDirty {
		// Inside a transaction the catalog's reader does not see the
		// change yet: reread at every ReadyForQuery until it is
		// committed (or rolled back).
		s.invalidateCatalog()
		s.schemaDirty = s.txStatus != 'I'
	}
	s.broadcastLocked()
	return out
}

// onInjected handles an answer to the gateway's own query (readonly.go):
// only ParameterStatus reaches the client; an error ends the session, the
// read-only state being unknown.
func (s *session) onInjected(typ byte, body []byte) (forward bool, err error) {
	switch typ {
	case 'S':
		return true, nil
	case 'E':
		return false, &fatal{code: codeInsufficientPrivilege, msg: "gatehouse: could not set the session's read-only mode; the session has ended"}
	case 'Z':
		s.readyForQuery(body)
	}
	return false, nil
}

func cloneFields(fs []pgproto3.FieldDescription) []pgproto3.FieldDescription {
	out := make([]pgproto3.FieldDescription, len(fs))
	for i, f := range fs {
		f.Name = bytes.Clone(f.Name)
		out[i] = f
	}
	return out
}

// bindComplete records the shape of the bound portal's rows: the
// statement's columns with the formats the Bind asked for.
func (s *session) bindComplete(x *expect) {
	fields, ok := s.be.stmtDesc[x.stmt]
	if !ok {
		delete(s.be.portalDesc, x.name)
		return
	}
	s.be.portalDesc[x.name] = withFormats(fields, x.formats)
}

func (s *session) closeComplete(x *expect) {
	if x.describe == 'S' {
		delete(s.be.stmtDesc, x.name)
	} else {
		delete(s.be.portalDesc, x.name)
	}
}

// withFormats applies Bind result format codes: none means all text, one
// applies to all columns, otherwise one per column (PostgreSQL docs,
// "Message Formats", Bind).
func withFormats(fields []pgproto3.FieldDescription, formats []int16) []pgproto3.FieldDescription {
	out := make([]pgproto3.FieldDescription, len(fields))
	copy(out, fields)
	for i := range out {
		switch {
		case len(formats) == 0:
			out[i].Format = 0
		case len(formats) == 1:
			out[i].Format = formats[0]
		case i < len(formats):
			out[i].Format = formats[i]
		}
	}
	return out
}

// onUpstreamError swaps the error of a denied statement's substitute for
// Gatehouse's own, and drops the expectations the upstream now skips.
func (s *session) onUpstreamError(body []byte) []byte {
	var d *denial
	var dropped []*expect
	if x := s.head(); x != nil && x.kind != 'Q' && x.kind != 'S' {
		if x.kind == 'P' && x.name == "" {
			// A failed Parse of the unnamed statement has already
			// destroyed the previous one (exec_parse_message).
			s.mu.Lock()
			delete(s.defs, "")
			s.mu.Unlock()
		}
		dropped = s.skipToSync()
	} else if x != nil && x.rec != nil {
		x.rec.Error = errorCode(body)
	}
	if bytes.Contains(body, []byte("gatehouse_denied_")) {
		s.mu.Lock()
		for _, x := range append(dropped, s.queue...) {
			if x.deny != nil && bytes.Contains(body, []byte(x.deny.marker)) {
				d = x.deny
				break
			}
		}
		s.mu.Unlock()
	}
	for _, x := range dropped {
		s.finish(x, "error")
	}
	if d == nil {
		if s.masker != nil {
			return s.maskNotice(body)
		}
		return body
	}
	return errorMessage("ERROR", d.code, d.reason, "", "")
}

// commandRows reads the row count at the end of a CommandComplete tag
// ("SELECT 5", "INSERT 0 1", "UPDATE 3").
func commandRows(body []byte) int64 {
	tag, _, _ := cstring(body)
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(tag[i+1:], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// errorCode reads the SQLSTATE of an ErrorResponse body.
func errorCode(body []byte) string {
	for len(body) > 0 && body[0] != 0 {
		v, rest, ok := cstring(body[1:])
		if !ok {
			return "error"
		}
		if body[0] == 'C' {
			return "SQLSTATE " + v
		}
		body = rest
	}
	return "error"
}
