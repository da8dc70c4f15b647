package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
)

// frontState is what the frontend goroutine knows about the client's
// prepared statements and portals.
type frontState struct {
	// described: the client has described this statement (since its last
	// Parse), so the backend knows its columns.
	described map[string]bool
	// portalDescribed: the client described this portal.
	portalDescribed map[string]bool
	// portalStmt: the statement each portal was bound from.
	portalStmt map[string]string
	// stmts: the analysis of each prepared statement, for recording.
	stmts map[string]*sqlguard.Analysis
	// portalParams: each portal's parameters, masked, for recording.
	portalParams map[string][]string
	// held: prepared statements that run only after an approval.
	held map[string]*gateway.Hold
	seq  uint64
}

func newFrontState() *frontState {
	return &frontState{described: map[string]bool{}, portalDescribed: map[string]bool{}, portalStmt: map[string]string{}, stmts: map[string]*sqlguard.Analysis{}, portalParams: map[string][]string{}, held: map[string]*gateway.Hold{}}
}

// frontend reads client messages, governs the ones that carry SQL and
// forwards the rest as bytes.
func (s *session) frontend(ctx context.Context) error {
	for {
		typ, body, err := s.cr.next()
		if err != nil {
			return err
		}
		switch typ {
		case 'Q':
			err = s.onQuery(ctx, body)
		case 'P':
			err = s.onParse(ctx, body)
		case 'B':
			err = s.onBind(ctx, body)
		case 'D':
			err = s.onDescribe(body)
		case 'E':
			err = s.onExecute(body)
		case 'C':
			err = s.onClose(body)
		case 'S':
			s.push(&expect{kind: 'S'})
			err = writeFrame(s.uw, typ, body)
		case 'H', 'd', 'c', 'f':
			// Flush and COPY data: COPY was decided when its statement was.
			err = writeFrame(s.uw, typ, body)
			if typ == 'H' {
				err = errors.Join(err, s.uw.Flush())
			}
		case 'F':
			err = s.onFunctionCall(ctx)
		case 'X':
			writeFrame(s.uw, typ, body)
			s.uw.Flush()
			return errTerminate
		default:
			return protocolError("unexpected message type %q", typ)
		}
		if err != nil {
			return err
		}
		if !s.cr.buffered() {
			if err := s.uw.Flush(); err != nil {
				return fmt.Errorf("write upstream: %w", err)
			}
		}
	}
}

// govern analyses sql and asks the pipeline. A nil denial means allowed;
// hold, when set, means allowed only once a human approves.
func (s *session) govern(ctx context.Context, sql string, extended bool) (*sqlguard.Analysis, *denial, *stmtRecord, *gateway.Hold, error) {
	a := s.e.opts.Analyzer.Analyze(sql)
	req := gateway.Request{
		Context: map[string]any{
			"class":   string(a.Class),
			"tables":  a.Tables,
			"columns": a.Columns,
			"flags":   a.Flags,
		},
		CacheKey:   a,
		Generation: s.e.opts.Analyzer.Generation(),
	}
	for _, acc := range a.Accesses {
		if acc.Table == "" {
			req.Accesses = append(req.Accesses, gateway.Access{Action: acc.Action, ResourceType: policy.Connection, ResourceID: s.gs.Connection})
		} else {
			req.Accesses = append(req.Accesses, gateway.Access{Action: acc.Action, ResourceType: policy.Table, ResourceID: s.gs.Connection + "/" + acc.Table})
		}
	}
	if len(req.Accesses) == 0 {
		req.Accesses = []gateway.Access{{Action: "sql:" + string(a.Class), ResourceType: policy.Connection, ResourceID: s.gs.Connection}}
	}
	req.Audit.Details = map[string]string{"statement": a.Normalized, "fingerprint": a.Fingerprint, "class": string(a.Class)}
	if len(a.Flags) > 0 {
		req.Audit.Details["flags"] = strings.Join(a.Flags, ",")
	}
	if extended {
		req.Audit.Details["protocol"] = "extended"
	}
	v, err := s.e.opts.Pipeline.Authorize(ctx, s.gs, req)
	if f := s.tokenEnded(err); f != nil { // expiry.go: the token expired or was revoked
		return a, nil, nil, nil, f
	}
	if err != nil {
		// The audit log cannot take the event: nothing runs unlogged.
		return a, &denial{marker: s.marker(), reason: "gatehouse: statement refused: the audit log is unavailable", code: codeCannotConnectNow}, nil, nil, nil
	}
	rec := s.newRecord(a, v)
	if v.Allow {
		return a, nil, rec, v.Hold, nil
	}
	return a, &denial{marker: s.marker(), reason: "gatehouse: " + v.Reason, code: codeInsufficientPrivilege}, rec, nil, nil
}

// await holds a statement for approval, telling the client the approval id
// first. It returns a denial when the statement must not run.
func (s *session) await(ctx context.Context, h *gateway.Hold, a *sqlguard.Analysis, fingerprint string) *denial {
	// Stop waiting if the client goes away meanwhile; the request stays
	// pending for a retry.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := s.watchClient(cancel)
	defer stop()
	out, err := s.e.opts.Pipeline.AwaitApproval(ctx, s.gs, h, a.Normalized, fingerprint, func(ap *approval.Approval) {
		msg := fmt.Sprintf("gatehouse: approval required: %s (policy %q, reviewers %q, %d needed); waiting up to %s",
			ap.ID, ap.Policy, ap.Group, ap.Required, ap.Expires.Sub(ap.Created).Round(time.Second))
		hint := fmt.Sprintf("approve with: gatehouse approvals approve %s   or   POST /v1/approvals/%s/approve", ap.ID, ap.ID)
		s.writeClient('N', noticeMessage(msg, hint))
	})
	if err != nil {
		return &denial{marker: s.marker(), reason: "gatehouse: approval unavailable: " + err.Error(), code: codeCannotConnectNow}
	}
	if !out.Approved {
		return &denial{marker: s.marker(), reason: "gatehouse: " + out.Reason, code: codeInsufficientPrivilege}
	}
	return nil
}

// watchClient notices, while the frontend is blocked, that the client has
// closed its connection, and calls gone. It only peeks: bytes a client
// pipelines meanwhile stay buffered for the frontend. stop ends the watch
// (a read deadline in the past unblocks the peek) before the frontend
// reads again.
func (s *session) watchClient(gone func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := s.cr.r.Peek(1); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				gone()
			}
		}
	}()
	return func() {
		s.client.SetReadDeadline(time.Now())
		<-done
		s.client.SetReadDeadline(time.Time{})
	}
}

// marker returns a fresh identifier that PostgreSQL will reject as a syntax
// error and quote back in its message. Sending it upstream in place of a
// denied statement makes the upstream produce the error at exactly the
// right place in the response stream, abort the transaction as a real
// permission error would, and resynchronise the extended protocol at Sync;
// the backend goroutine then swaps in Gatehouse's own error.
func (s *session) marker() string {
	var b [8]byte
	rand.Read(b[:])
	return "gatehouse_denied_" + hex.EncodeToString(b[:])
}

func (s *session) onQuery(ctx context.Context, body []byte) error {
	sql, _, ok := cstring(body)
	if !ok {
		return protocolError("malformed Query message")
	}
	// A simple query replaces the unnamed statement and portal.
	delete(s.fe.described, "")
	delete(s.fe.portalDescribed, "")
	delete(s.fe.stmts, "")
	a, d, rec, hold, err := s.govern(ctx, sql, false)
	if err != nil {
		return err
	}
	if hold != nil {
		// A simple query's literals are in its text: the text binds it.
		d = s.await(ctx, hold, a, gateway.Fingerprint(s.gs.Connection, a.Normalized, []byte(sql)))
		if d != nil && rec != nil {
			rec.Decision, rec.Reason = "deny", d.reason
		}
	}
	x := &expect{kind: 'Q', deny: d, rec: rec}
	s.push(x)
	if d != nil {
		return writeFrame(s.uw, 'Q', append([]byte(d.marker), 0))
	}
	return writeFrame(s.uw, 'Q', body)
}

func (s *session) onParse(ctx context.Context, body []byte) error {
	name, rest, ok := cstring(body)
	if !ok {
		return protocolError("malformed Parse message")
	}
	sql, _, ok := cstring(rest)
	if !ok {
		return protocolError("malformed Parse message")
	}
	a, d, rec, hold, err := s.govern(ctx, sql, true)
	if err != nil {
		return err
	}
	// Parameters arrive with Bind: a held statement is prepared now and
	// held at each Bind, where its exact values are known.
	if hold != nil {
		s.fe.held[name] = hold
	} else {
		delete(s.fe.held, name)
	}
	s.fe.described[name] = false
	if d == nil {
		rec = nil // executions are recorded one by one
	}
	x := &expect{kind: 'P', name: name, deny: d, rec: rec}
	s.push(x)
	if d != nil {
		delete(s.fe.stmts, name)
		sub := append([]byte(name), 0)
		sub = append(sub, d.marker...)
		sub = append(sub, 0, 0, 0) // no parameter types
		return writeFrame(s.uw, 'P', sub)
	}
	s.fe.stmts[name] = a
	return writeFrame(s.uw, 'P', body)
}

func (s *session) onBind(ctx context.Context, body []byte) error {
	b, err := parseBind(body)
	if err != nil {
		return protocolError("malformed Bind message: %v", err)
	}
	if f := s.recheck(); f != nil { // expiry.go: a Bind runs a statement decided earlier
		return f
	}
	s.fe.portalStmt[b.portal] = b.stmt
	// The backend derives the portal's columns from the statement's
	// description only if that description answered before this Bind.
	s.fe.portalDescribed[b.portal] = s.fe.described[b.stmt]
	s.fe.portalParams[b.portal] = s.bindParams(b)
	x := &expect{kind: 'B', name: b.portal, stmt: b.stmt, formats: b.resultFormats}
	if hold := s.fe.held[b.stmt]; hold != nil {
		if err := s.uw.Flush(); err != nil { // what came before runs while we wait
			return err
		}
		a := s.fe.stmts[b.stmt]
		// The values bind it, not the portal's or statement's name.
		if d := s.await(ctx, hold, a, gateway.Fingerprint(s.gs.Connection, a.Normalized, b.values)); d != nil {
			// Bind to a statement that does not exist: the upstream fails
			// this Bind, naming the marker, and skips to Sync.
			x.deny = d
			s.push(x)
			sub := append([]byte{0}, d.marker...)
			sub = append(sub, 0, 0, 0, 0, 0, 0, 0)
			return writeFrame(s.uw, 'B', sub)
		}
	}
	s.push(x)
	return writeFrame(s.uw, 'B', body)
}

// bindMsg is a Bind message split into its parts (slices of the message).
type bindMsg struct {
	portal, stmt  string
	paramFormats  []int16
	params        [][]byte // nil for SQL NULL
	resultFormats []int16
	values        []byte // everything after the two names: what the client bound
}

// parseBind splits a Bind in one pass, validating every count and length
// against the message (PostgreSQL docs, "Message Formats", Bind).
func parseBind(body []byte) (bindMsg, error) {
	var m bindMsg
	var ok bool
	var b []byte
	if m.portal, b, ok = cstring(body); !ok {
		return m, errors.New("missing portal name")
	}
	if m.stmt, b, ok = cstring(b); !ok {
		return m, errors.New("missing statement name")
	}
	m.values = b
	var err error
	if m.paramFormats, b, err = readInt16s(b); err != nil {
		return m, fmt.Errorf("parameter formats: %w", err)
	}
	np, b, err := readInt16(b)
	if err != nil || np < 0 {
		return m, errors.New("bad parameter count")
	}
	m.params = make([][]byte, np)
	for i := range m.params {
		if len(b) < 4 {
			return m, errors.New("short parameter")
		}
		l := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if l == -1 {
			continue
		}
		if l < 0 || int(l) > len(b) {
			return m, errors.New("bad parameter length")
		}
		m.params[i] = b[:l:l]
		b = b[l:]
	}
	if m.resultFormats, b, err = readInt16s(b); err != nil {
		return m, fmt.Errorf("result formats: %w", err)
	}
	if len(b) != 0 {
		return m, errors.New("trailing bytes")
	}
	return m, nil
}

// readInt16s reads a count then that many int16s.
func readInt16s(b []byte) ([]int16, []byte, error) {
	n, b, err := readInt16(b)
	if err != nil || n < 0 || len(b) < 2*int(n) {
		return nil, nil, errors.New("bad count")
	}
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(binary.BigEndian.Uint16(b[2*i:]))
	}
	return out, b[2*int(n):], nil
}

func readInt16(b []byte) (int16, []byte, error) {
	if len(b) < 2 {
		return 0, nil, errors.New("short message")
	}
	return int16(binary.BigEndian.Uint16(b)), b[2:], nil
}

func (s *session) onDescribe(body []byte) error {
	if len(body) < 2 || (body[0] != 'S' && body[0] != 'P') {
		return protocolError("malformed Describe message")
	}
	name, _, ok := cstring(body[1:])
	if !ok {
		return protocolError("malformed Describe message")
	}
	if body[0] == 'S' {
		s.fe.described[name] = true
	} else {
		s.fe.portalDescribed[name] = true
	}
	s.push(&expect{kind: 'D', describe: body[0], name: name})
	return writeFrame(s.uw, 'D', body)
}

func (s *session) onExecute(body []byte) error {
	portal, _, ok := cstring(body)
	if !ok {
		return protocolError("malformed Execute message")
	}
	// The backend must know the columns of every result it masks; when the
	// client described neither the portal nor its statement, ask upstream
	// ourselves and keep the answer from the client.
	if !s.fe.portalDescribed[portal] {
		d := append([]byte{'P'}, portal...)
		d = append(d, 0)
		s.push(&expect{kind: 'D', describe: 'P', name: portal, swallow: true})
		if err := writeFrame(s.uw, 'D', d); err != nil {
			return err
		}
		s.fe.portalDescribed[portal] = true
	}
	x := &expect{kind: 'E', name: portal}
	if a := s.fe.stmts[s.fe.portalStmt[portal]]; a != nil {
		x.rec = s.newExecRecord(a, s.fe.portalParams[portal])
	}
	s.push(x)
	return writeFrame(s.uw, 'E', body)
}

func (s *session) onClose(body []byte) error {
	if len(body) < 2 || (body[0] != 'S' && body[0] != 'P') {
		return protocolError("malformed Close message")
	}
	name, _, ok := cstring(body[1:])
	if !ok {
		return protocolError("malformed Close message")
	}
	if body[0] == 'S' {
		delete(s.fe.described, name)
		delete(s.fe.stmts, name)
		delete(s.fe.held, name)
	} else {
		delete(s.fe.portalDescribed, name)
		delete(s.fe.portalStmt, name)
		delete(s.fe.portalParams, name)
	}
	s.push(&expect{kind: 'C', describe: body[0], name: name})
	return writeFrame(s.uw, 'C', body)
}

// onFunctionCall governs the fast-path interface, which calls a function
// by OID with no SQL to analyse (lo_import and friends are reachable this
// way), so it is decided as an unparsed statement.
func (s *session) onFunctionCall(ctx context.Context) error {
	req := gateway.Request{
		Accesses: []gateway.Access{{Action: "sql:unparsed", ResourceType: policy.Connection, ResourceID: s.gs.Connection}},
		Context:  map[string]any{"class": "unparsed", "flags": []string{"function_call"}},
	}
	req.Audit.Details = map[string]string{"statement": "<fast-path function call>"}
	v, err := s.e.opts.Pipeline.Authorize(ctx, s.gs, req)
	reason := "gatehouse: the fast-path function call interface is not allowed"
	if err == nil && !v.Allow {
		reason = "gatehouse: " + v.Reason
	}
	// Even when allowed, the call is not forwarded: its arguments cannot be
	// inspected, so the substitute error stands.
	d := &denial{marker: s.marker(), reason: reason, code: codeInsufficientPrivilege}
	s.push(&expect{kind: 'Q', deny: d})
	return writeFrame(s.uw, 'Q', append([]byte(d.marker), 0))
}
