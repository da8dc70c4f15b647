package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// frontState is what the frontend goroutine knows about the client's
// portals and batches. What prepared statements mean is the session's
// model (session.defs and the queue; prepared.go).
type frontState struct {
	// described: the statement definition the client last described under
	// each name, so the backend knows its columns; a definition that has
	// changed since (a Parse, or SQL DEALLOCATE and PREPARE) is described
	// afresh.
	described map[string]*stmtDef
	// portalDescribed: the client described this portal.
	portalDescribed map[string]bool
	// portal: what each portal was bound from.
	portal map[string]*portalInfo
	// inBatch: extended-protocol messages were sent since the last Sync or
	// simple query, so an error now makes the upstream skip to the Sync.
	inBatch bool
	// txEnded: an Execute of this batch ends a transaction, so a later one
	// would start a new transaction before the server reported its
	// settings (readonly.go).
	txEnded bool
	// copyFrom: the last forwarded Query or Execute may start COPY FROM
	// STDIN, and no CopyDone or CopyFail has been sent since; copyData:
	// CopyData has been sent since.
	copyFrom *expect
	copyData bool
	seq      uint64
}

// portalInfo is what a Bind made a portal from.
type portalInfo struct {
	def *stmtDef
	// params are the portal's parameters, masked, for recording.
	params []string
	// executes are what the statement's EXECUTEs meant at Bind, rechecked
	// at each Execute.
	executes []*stmtDef
	// writes: the Bind's decision allowed a write (readonly.go).
	writes bool
}

func newFrontState() *frontState {
	return &frontState{described: map[string]*stmtDef{}, portalDescribed: map[string]bool{}, portal: map[string]*portalInfo{}}
}

// frontend reads client messages, governs the ones that carry SQL and
// forwards the rest as bytes.
func (s *session) frontend(ctx context.Context) error {
	for {
		typ, body, err := s.cr.next()
		if err != nil {
			return err
		}
		if s.roBase && !s.fe.inBatch && (typ == 'Q' || typ == 'P' || typ == 'B' || typ == 'E' || typ == 'D' || typ == 'C') {
			if err := s.settleWall(ctx); err != nil {
				return err
			}
		}
		switch typ {
		case 'Q':
			err = s.onQuery(ctx, body)
			s.fe.inBatch, s.fe.txEnded = false, false
		case 'P':
			err = s.onParse(ctx, body)
			s.fe.inBatch = true
		case 'B':
			err = s.onBind(ctx, body)
			s.fe.inBatch = true
		case 'D':
			err = s.onDescribe(ctx, body)
			s.fe.inBatch = true
		case 'E':
			err = s.onExecute(body)
			s.fe.inBatch = true
		case 'C':
			err = s.onClose(ctx, body)
			s.fe.inBatch = true
		case 'S':
			// A Sync the server reads during COPY FROM STDIN is ignored
			// (copyfromparse.c); which ones it reads there is known only
			// once the COPY has started or failed (backend.go).
			s.push(&expect{kind: 'S', copyOf: s.fe.copyFrom, afterData: s.fe.copyData})
			err = writeFrame(s.uw, typ, body)
			s.fe.inBatch, s.fe.txEnded = false, false
		case 'H', 'd', 'c', 'f':
			// Flush and COPY data: COPY was decided when its statement was.
			switch {
			case typ == 'c' || typ == 'f':
				s.fe.copyFrom = nil // CopyDone or CopyFail ends COPY FROM STDIN
			case typ == 'd' && s.fe.copyFrom != nil:
				s.fe.copyData = true
			}
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

// await holds a statement for approval, telling the client the approval id
// first. op is what runs (the exact text and its parameters, which must
// not lie in the read buffer: the client's next bytes refill it while we
// wait): the approval binds all of it. It returns a denial when the
// statement must not run.
func (s *session) await(ctx context.Context, h *gateway.Hold, a *sqlguard.Analysis, op approval.Operation) *denial {
	if err := s.uw.Flush(); err != nil { // what came before runs while we wait
		return s.deny(codeConnectionFailure, "gatehouse: upstream write failed")
	}
	// Stop waiting if the client goes away meanwhile; the request stays
	// pending for a retry.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := s.watchClient(cancel)
	defer stop()
	op.Database, op.Action = s.database, a.Class.Action()
	out, err := s.e.opts.Pipeline.AwaitApproval(ctx, s.gs, h, op, a.Normalized, func(ap *approval.Approval) {
		msg := fmt.Sprintf("gatehouse: approval required: %s (policy %q, reviewers %q, %d needed); waiting up to %s",
			ap.ID, ap.Policy, ap.Group, ap.Required, ap.Expires.Sub(ap.Created).Round(time.Second))
		hint := fmt.Sprintf("approve with: gatehouse approvals approve %s   or   POST /v1/approvals/%s/approve", ap.ID, ap.ID)
		s.writeClient('N', noticeMessage(msg, hint))
	})
	if err != nil {
		return s.deny(codeCannotConnectNow, "gatehouse: approval unavailable: "+err.Error())
	}
	if !out.Approved {
		return s.deny(codeInsufficientPrivilege, "gatehouse: "+out.Reason)
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

// precheck refuses, before parsing, a text beyond the analysis limits or
// one the server might read differently than the analysis would.
func (s *session) precheck(ctx context.Context, sql string) *denial {
	if d := s.checkSize(sql); d != nil {
		return d
	}
	return s.lexicalGate(ctx, sql)
}

func (s *session) onQuery(ctx context.Context, body []byte) error {
	sql, rest, ok := cstring(body)
	if !ok || len(rest) != 0 {
		// A NUL inside the text would end what the analysis reads
		// before what the server might.
		return protocolError("malformed Query message")
	}
	// A simple query replaces the unnamed portal and destroys the unnamed
	// statement.
	delete(s.fe.described, "")
	delete(s.fe.portalDescribed, "")
	delete(s.fe.portal, "")
	x := &expect{kind: 'Q'}
	if s.roBase && s.fe.txEnded {
		// A simple query after a COMMIT of the same batch would start a
		// transaction before the server reported its settings.
		x.deny = s.deny(codeInsufficientPrivilege, "gatehouse: in a read-only session a transaction may end only at the end of a batch; send a Sync after COMMIT or ROLLBACK")
	}
	if x.deny == nil {
		x.deny = s.precheck(ctx, sql)
	}
	var a *sqlguard.Analysis
	if x.deny == nil {
		a, x.deny = s.analyze(ctx, sql)
	}
	if x.deny == nil {
		var dec decision
		dec, x.effects = s.decideQuery(ctx, sql, a)
		if dec.fatal != nil {
			return dec.fatal
		}
		x.deny, x.rec, x.schema = dec.deny, dec.rec, changesSchema(a)
		if dec.hold != nil {
			// body lies in the read buffer, which the client's next bytes
			// refilled while we waited: forward what was approved (sql
			// was copied out before).
			body = append([]byte(sql), 0)
		}
		if x.deny == nil {
			if err := s.adjustWall(dec.writes); err != nil {
				return err
			}
		}
	}
	s.push(x)
	if x.deny != nil {
		if x.rec != nil {
			x.rec.Decision, x.rec.Reason = "deny", x.deny.reason
		}
		x.effects = nil
		return writeFrame(s.uw, 'Q', append([]byte(x.deny.marker), 0))
	}
	if a != nil && a.HasFlag(sqlguard.FlagCopyFromStdin) {
		s.fe.copyFrom, s.fe.copyData = x, false
	}
	return writeFrame(s.uw, 'Q', body)
}

// changesSchema reports whether a's statements may create or change
// functions and operators, so the function catalog must be reread.
func changesSchema(a *sqlguard.Analysis) bool {
	return a != nil && (a.Class == sqlguard.ClassDDL || a.Class == sqlguard.ClassDCL || a.Class == sqlguard.ClassCall)
}

// decideQuery governs a simple query: the text itself, and each prepared
// statement its EXECUTEs run, decided as that statement. It returns what
// the query's PREPAREs and DEALLOCATEs do to the prepared statements.
func (s *session) decideQuery(ctx context.Context, sql string, a *sqlguard.Analysis) (decision, []stmtEffect) {
	dec := s.decide(ctx, a, false, false)
	if dec.deny != nil {
		return dec, nil
	}
	effects, execs, d := s.queryEffects(sql, a)
	if d != nil {
		dec.deny = d
		return dec, nil
	}
	holdText := sql
	for _, def := range execs {
		sub := s.decide(ctx, def.a, false, false)
		if sub.deny != nil || sub.fatal != nil {
			dec.deny, dec.fatal = sub.deny, sub.fatal
			return dec, nil
		}
		dec.writes = dec.writes || sub.writes
		if sub.hold != nil && dec.hold == nil {
			dec.hold = sub.hold
		}
		holdText += "\x00" + def.text
	}
	if dec.hold != nil {
		// A simple query's literals are in its text, and the text of
		// what its EXECUTEs run is in the definitions: together they
		// bind the approval.
		dec.deny = s.await(ctx, dec.hold, a, approval.Operation{Text: holdText})
	}
	return dec, effects
}

// queryEffects resolves the EXECUTEs of a simple query, statement by
// statement (a PREPARE earlier in the same text counts), and lists what
// its PREPAREs and DEALLOCATEs will do once each statement completes.
func (s *session) queryEffects(sql string, a *sqlguard.Analysis) (effects []stmtEffect, execs []*stmtDef, d *denial) {
	var texts []string
	for i, st := range a.Statements {
		for _, name := range st.Executes {
			name = pgName(name)
			s.mu.Lock()
			o := s.resolveLocked(name, effects)
			s.mu.Unlock()
			switch {
			case o.undefined():
				return nil, nil, s.undefinedStatement(name)
			case o.anyHeld():
				return nil, nil, s.deny(codeInsufficientPrivilege, fmt.Sprintf("gatehouse: prepared statement %q is held for approval and runs only through Bind", name))
			}
			for _, def := range o.defs {
				if def != nil {
					execs = append(execs, def)
				}
			}
		}
		switch {
		case st.Prepares != "":
			if texts == nil {
				texts = splitStatements(sql, len(a.Statements))
			}
			def := &stmtDef{text: texts[i], a: statementAnalysis(a, i), upstream: pgName(st.Prepares)}
			effects = append(effects, stmtEffect{kind: 'p', name: pgName(st.Prepares), def: def, stmt: i})
		case st.Deallocates != "":
			effects = append(effects, stmtEffect{kind: 'd', name: pgName(st.Deallocates), stmt: i})
		case st.DeallocatesAll:
			effects = append(effects, stmtEffect{kind: 'a', stmt: i})
		}
	}
	return effects, execs, nil
}

// splitStatements cuts sql into its n statements with the parser's own
// boundaries; where that fails (it cannot, for text that parsed), the
// whole text stands for each.
func splitStatements(sql string, n int) []string {
	parts, err := pg_query.SplitWithParser(sql, true)
	if err != nil || len(parts) != n {
		parts = make([]string, n)
		for i := range parts {
			parts[i] = sql
		}
	}
	return parts
}

// statementAnalysis is the analysis of statement i of a, as if it had
// been sent alone (for a PREPARE in a multi-statement query).
func statementAnalysis(a *sqlguard.Analysis, i int) *sqlguard.Analysis {
	if len(a.Statements) == 1 {
		return a
	}
	st := a.Statements[i]
	return &sqlguard.Analysis{
		Class: st.Class, Statements: a.Statements[i : i+1 : i+1], Tables: st.Tables, Columns: st.Columns,
		Functions: st.Functions, Flags: st.Flags, Accesses: st.Accesses, Calls: st.Calls, Operators: st.Operators,
		Settings: st.Settings, Normalized: a.Normalized, Fingerprint: a.Fingerprint,
	}
}

func (s *session) onParse(ctx context.Context, body []byte) error {
	name, rest, ok := cstring(body)
	if !ok {
		return protocolError("malformed Parse message")
	}
	sql, types, ok := cstring(rest)
	if !ok {
		return protocolError("malformed Parse message")
	}
	// The analysis reads the text up to its NUL; anything after the
	// parameter types would be read by nobody, so it is refused.
	paramTypes, err := parseParamTypes(types)
	if err != nil {
		return protocolError("malformed Parse message: %v", err)
	}
	x := &expect{kind: 'P', name: pgName(name)}
	x.deny = s.badName(name)
	name = x.name
	if x.deny == nil && strings.HasPrefix(name, privatePrefix) {
		x.deny = s.deny(codeInsufficientPrivilege, fmt.Sprintf("gatehouse: prepared statement names starting with %q are reserved", privatePrefix))
	}
	if x.deny == nil {
		x.deny = s.precheck(ctx, sql)
	}
	var a *sqlguard.Analysis
	if x.deny == nil {
		a, x.deny = s.analyze(ctx, sql)
	}
	var dec decision
	if x.deny == nil {
		// A Parse runs nothing; its executions are decided, audited and
		// held at each Bind. It is decided now so that what would be
		// denied is never prepared.
		dec = s.decide(ctx, a, true, true)
		if dec.fatal != nil {
			return dec.fatal
		}
		x.deny, x.rec = dec.deny, dec.rec
	}
	if x.deny == nil && name != "" {
		if d, err := s.checkParseName(ctx, name, dec.hold != nil); err != nil {
			return err
		} else if d != nil {
			x.deny = d
		}
	}
	delete(s.fe.described, name)
	upstream := name
	if x.deny == nil {
		x.def = &stmtDef{text: sql, a: a, upstream: name}
		// A malformed list leaves none: the upstream refuses the Parse.
		x.def.types = paramTypes
		if dec.hold != nil {
			// Held: prepared under a name only the gateway knows, so
			// nothing but an approved Bind can run it.
			x.def.held, x.def.upstream = true, privateName()
			upstream = x.def.upstream
		}
		x.rec = nil // executions are recorded one by one
		// A held statement's wall is lowered at its Bind, once approved.
		if err := s.adjustWall(dec.writes && dec.hold == nil); err != nil {
			return err
		}
	}
	s.push(x)
	if x.deny != nil {
		subName := name
		if !utf8.ValidString(subName) {
			// A truncated name the server would reject as bad UTF-8
			// before the marker: the marker names the statement too.
			subName, x.name = x.deny.marker, x.deny.marker
		}
		sub := append([]byte(subName), 0)
		sub = append(sub, x.deny.marker...)
		sub = append(sub, 0, 0, 0) // no parameter types
		return writeFrame(s.uw, 'P', sub)
	}
	if upstream != name {
		msg := append([]byte(upstream), 0)
		msg = append(msg, sql...)
		msg = append(msg, 0)
		msg = append(msg, types...)
		return writeFrame(s.uw, 'P', msg)
	}
	return writeFrame(s.uw, 'P', body)
}

// checkParseName decides a named Parse against what the name means now.
// The upstream refuses a name in use (42P05) by itself, except where the
// name's statement is held under a private name: there the gateway
// answers as the server would. A held Parse of a name in use is refused
// the same way, since it would not reach the server under that name.
func (s *session) checkParseName(ctx context.Context, name string, held bool) (*denial, error) {
	o, err := s.resolveSettled(ctx, name, held)
	if err != nil {
		return nil, err
	}
	if o.undefined() {
		return nil, nil
	}
	if held || o.anyHeld() {
		return s.duplicateStatement(name), nil
	}
	return nil, nil
}

// resolveSettled resolves name, waiting while the answer is ambiguous and
// mustSettle (or a held statement is among the outcomes): the upstream
// name to use depends on which outcome holds.
func (s *session) resolveSettled(ctx context.Context, name string, mustSettle bool) (outcome, error) {
	deadline := time.Now().Add(lexicalWait)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		o := s.resolveLocked(name, nil)
		if !o.ambiguous() || !mustSettle && !o.anyHeld() {
			return o, nil
		}
		if err := s.waitLocked(ctx, deadline); err != nil {
			return o, fmt.Errorf("waiting for prepared statement %q: %w", name, err)
		}
	}
}

func (s *session) onBind(ctx context.Context, body []byte) error {
	b, err := parseBind(body)
	if err != nil {
		return protocolError("malformed Bind message: %v", err)
	}
	bad := s.badName(b.portal)
	if bad == nil {
		bad = s.badName(b.stmt)
	}
	b.portal, b.stmt = pgName(b.portal), pgName(b.stmt)
	if f := s.recheck(); f != nil { // expiry.go: a Bind runs a statement decided earlier
		return f
	}
	x := &expect{kind: 'B', name: b.portal, stmt: b.stmt, formats: b.resultFormats}
	delete(s.fe.portal, b.portal)
	s.fe.portalDescribed[b.portal] = false
	var pi *portalInfo
	upstream := b.stmt
	if bad != nil {
		x.deny = bad
	} else if strings.HasPrefix(b.stmt, privatePrefix) {
		x.deny = s.undefinedStatement(b.stmt)
	} else {
		o, err := s.resolveSettled(ctx, b.stmt, false)
		if err != nil {
			x.deny = s.deny(codeFeatureNotSupported, "gatehouse: "+err.Error())
		} else {
			var f *fatal
			if pi, upstream, x.deny, f = s.decideBind(ctx, &b, o); f != nil {
				return f
			} else if x.deny == nil {
				s.fe.portal[b.portal] = pi
				wall := s.adjustWall
				if pi.writes {
					wall = func(bool) error { return s.lowerWallForBind() }
				}
				if err := wall(pi.writes); err != nil {
					return err
				}
				// The backend derives the portal's columns from the
				// statement's description only if the client described
				// this very definition before this Bind.
				s.fe.portalDescribed[b.portal] = !o.ambiguous() && o.single() != nil && s.fe.described[b.stmt] == o.single()
			}
		}
	}
	s.push(x)
	if x.deny != nil {
		// Bind to a statement that does not exist: the upstream fails
		// this Bind, naming the marker, and skips to Sync.
		sub := append([]byte{0}, x.deny.marker...)
		sub = append(sub, 0, 0, 0, 0, 0, 0, 0)
		return writeFrame(s.uw, 'B', sub)
	}
	if b.owned != nil {
		body = b.owned // the engine's copy, made before it waited on a hold
	}
	if upstream != b.stmt {
		msg := append([]byte(b.portal), 0)
		msg = append(msg, upstream...)
		msg = append(msg, 0)
		msg = append(msg, b.values...)
		return writeFrame(s.uw, 'B', msg)
	}
	return writeFrame(s.uw, 'B', body)
}

// decideBind decides one execution of a prepared statement: every
// statement the name may mean must be allowed, with the parameters bound,
// and a held one waits for an approval of exactly its text and values.
func (s *session) decideBind(ctx context.Context, b *bindMsg, o outcome) (*portalInfo, string, *denial, *fatal) {
	if o.undefined() {
		return nil, "", s.undefinedStatement(b.stmt), nil
	}
	pi := &portalInfo{params: s.bindParams(*b)}
	if b.portal != "" && slices.ContainsFunc(o.defs, func(d *stmtDef) bool { return d != nil && d.a.HasFlag(sqlguard.FlagExecutePrepared) }) {
		// SQL FETCH and MOVE reach named portals: a portal that runs an
		// EXECUTE would run whatever the name means when fetched, which
		// only a protocol Execute is checked against.
		return nil, "", s.deny(codeInsufficientPrivilege, "gatehouse: a statement with EXECUTE may be bound only to the unnamed portal"), nil
	}
	upstream := b.stmt
	for _, def := range o.defs {
		if def == nil {
			continue // the upstream fails the Bind itself
		}
		pi.def, upstream = def, def.upstream
		dec := s.decide(ctx, def.a, true, false)
		if dec.deny != nil || dec.fatal != nil {
			return nil, "", dec.deny, dec.fatal
		}
		pi.writes = pi.writes || dec.writes
		for _, st := range def.a.Statements {
			for _, name := range st.Executes {
				eo := s.resolve(pgName(name))
				if eo.undefined() || eo.anyHeld() || eo.ambiguous() {
					return nil, "", s.deny(codeInsufficientPrivilege, fmt.Sprintf("gatehouse: EXECUTE %s: the prepared statement is undefined, held, or being redefined", name)), nil
				}
				sub := s.decide(ctx, eo.single().a, true, false)
				if sub.deny != nil || sub.fatal != nil {
					return nil, "", sub.deny, sub.fatal
				}
				if sub.hold != nil && dec.hold == nil {
					dec.hold = sub.hold
				}
				pi.executes = append(pi.executes, eo.single())
			}
		}
		if dec.hold != nil {
			text := def.text
			for _, e := range pi.executes {
				text += "\x00" + e.text
			}
			if err := b.own(); err != nil {
				return nil, "", s.deny(codeInsufficientPrivilege, "gatehouse: "+err.Error()), nil
			}
			if d := s.await(ctx, dec.hold, def.a, def.operation(text, *b)); d != nil {
				return nil, "", d, nil
			}
		}
	}
	return pi, upstream, nil, nil
}

// bindMsg is a Bind message split into its parts (slices of the message).
type bindMsg struct {
	portal, stmt  string
	paramFormats  []int16
	params        [][]byte // nil for SQL NULL
	resultFormats []int16
	values        []byte // everything after the two names: what the client bound
	// owned, once set (own), is the engine's copy of the message, which
	// the other fields then point into.
	owned []byte
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

func (s *session) onDescribe(ctx context.Context, body []byte) error {
	if len(body) < 2 || (body[0] != 'S' && body[0] != 'P') {
		return protocolError("malformed Describe message")
	}
	name, _, ok := cstring(body[1:])
	if !ok {
		return protocolError("malformed Describe message")
	}
	if d := s.badName(name); d != nil {
		x := &expect{kind: 'D', describe: 'S', name: d.marker, deny: d}
		s.push(x)
		return writeFrame(s.uw, 'D', append(append([]byte{'S'}, d.marker...), 0))
	}
	name = pgName(name)
	x := &expect{kind: 'D', describe: body[0], name: name}
	if body[0] == 'S' {
		s.fe.described[name] = s.resolve(name).single()
		upstream, d, err := s.upstreamName(ctx, name)
		if err != nil {
			return err
		}
		if d != nil {
			x.deny = d
			s.push(x)
			return writeFrame(s.uw, 'D', append(append([]byte{'S'}, d.marker...), 0))
		}
		if upstream != name {
			s.push(x)
			return writeFrame(s.uw, 'D', append(append([]byte{'S'}, upstream...), 0))
		}
	} else {
		s.fe.portalDescribed[name] = true
	}
	s.push(x)
	return writeFrame(s.uw, 'D', body)
}

// upstreamName is the name the upstream knows a client's statement by.
func (s *session) upstreamName(ctx context.Context, name string) (string, *denial, error) {
	if strings.HasPrefix(name, privatePrefix) {
		return "", s.undefinedStatement(name), nil
	}
	o, err := s.resolveSettled(ctx, name, false)
	if err != nil {
		return "", nil, err
	}
	if d := o.single(); d != nil {
		return d.upstream, nil, nil
	}
	return name, nil, nil
}

func (s *session) onExecute(body []byte) error {
	portal, _, ok := cstring(body)
	if !ok {
		return protocolError("malformed Execute message")
	}
	if d := s.badName(portal); d != nil {
		x := &expect{kind: 'E', name: d.marker, deny: d}
		s.push(x)
		return writeFrame(s.uw, 'E', append(append([]byte(d.marker), 0), 0, 0, 0, 0))
	}
	portal = pgName(portal)
	pi := s.fe.portal[portal]
	x := &expect{kind: 'E', name: portal}
	if s.roBase && s.fe.txEnded {
		x.deny = s.deny(codeInsufficientPrivilege, "gatehouse: in a read-only session a transaction may end only at the end of a batch; send a Sync after COMMIT or ROLLBACK")
		s.push(x)
		return writeFrame(s.uw, 'E', append(append([]byte(x.deny.marker), 0), 0, 0, 0, 0))
	}
	if pi != nil && pi.def != nil {
		x.rec = s.newExecRecord(pi.def.a, pi.params)
		x.schema = changesSchema(pi.def.a)
		s.fe.txEnded = s.fe.txEnded || pi.def.a.HasFlag(sqlguard.FlagEndsTransaction)
		if d := s.recheckExecutes(pi); d != nil {
			x.deny = d
			s.push(x)
			return writeFrame(s.uw, 'E', append(append([]byte(d.marker), 0), 0, 0, 0, 0))
		}
		x.effects = portalEffects(pi.def)
	}
	if pi != nil && pi.def != nil && pi.def.a.HasFlag(sqlguard.FlagCopyFromStdin) {
		s.fe.copyFrom, s.fe.copyData = x, false
	}
	// The backend must know the columns of every result it masks; when the
	// client described neither the portal nor its statement, ask upstream
	// ourselves and keep the answer from the client. A named portal is
	// always described afresh: SQL CLOSE and DECLARE, and the end of a
	// transaction, replace it behind the protocol's back.
	if !s.fe.portalDescribed[portal] || portal != "" {
		d := append([]byte{'P'}, portal...)
		d = append(d, 0)
		s.push(&expect{kind: 'D', describe: 'P', name: portal, swallow: true})
		if err := writeFrame(s.uw, 'D', d); err != nil {
			return err
		}
		s.fe.portalDescribed[portal] = true
	}
	s.push(x)
	return writeFrame(s.uw, 'E', body)
}

// recheckExecutes refuses an Execute whose statement's EXECUTEs would now
// run something other than what its Bind decided.
func (s *session) recheckExecutes(pi *portalInfo) *denial {
	i := 0
	for _, st := range pi.def.a.Statements {
		for _, name := range st.Executes {
			o := s.resolve(pgName(name))
			if o.ambiguous() || i >= len(pi.executes) || o.single() != pi.executes[i] {
				return s.deny(codeInsufficientPrivilege, fmt.Sprintf("gatehouse: EXECUTE %s: the prepared statement changed since the portal was bound", name))
			}
			i++
		}
	}
	return nil
}

// portalEffects is what executing a statement made by Parse does to the
// prepared statements (a Parse of PREPARE or DEALLOCATE).
func portalEffects(def *stmtDef) []stmtEffect {
	if len(def.a.Statements) != 1 {
		return nil
	}
	st := def.a.Statements[0]
	switch {
	case st.Prepares != "":
		return []stmtEffect{{kind: 'p', name: pgName(st.Prepares), def: &stmtDef{text: def.text, a: def.a, upstream: pgName(st.Prepares)}}}
	case st.Deallocates != "":
		return []stmtEffect{{kind: 'd', name: pgName(st.Deallocates)}}
	case st.DeallocatesAll:
		return []stmtEffect{{kind: 'a'}}
	}
	return nil
}

func (s *session) onClose(ctx context.Context, body []byte) error {
	if len(body) < 2 || (body[0] != 'S' && body[0] != 'P') {
		return protocolError("malformed Close message")
	}
	name, _, ok := cstring(body[1:])
	if !ok {
		return protocolError("malformed Close message")
	}
	if d := s.badName(name); d != nil {
		// Nothing to close under a name the model cannot key: the client
		// gets its CloseComplete and nothing changes.
		s.push(&expect{kind: 'C', describe: 'S', name: d.marker})
		return writeFrame(s.uw, 'C', append(append([]byte{'S'}, d.marker...), 0))
	}
	name = pgName(name)
	x := &expect{kind: 'C', describe: body[0], name: name}
	if body[0] == 'P' {
		delete(s.fe.portalDescribed, name)
		delete(s.fe.portal, name)
		s.push(x)
		return writeFrame(s.uw, 'C', body)
	}
	delete(s.fe.described, name)
	upstream, d, err := s.upstreamName(ctx, name)
	if err != nil {
		return err
	}
	s.push(x)
	if d != nil {
		// Closing a statement that does not exist is not an error: the
		// client gets its CloseComplete and nothing is closed.
		upstream = d.marker
	}
	return writeFrame(s.uw, 'C', append(append([]byte{'S'}, upstream...), 0))
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
	d := s.deny(codeInsufficientPrivilege, reason)
	s.push(&expect{kind: 'Q', deny: d})
	return writeFrame(s.uw, 'Q', append([]byte(d.marker), 0))
}
