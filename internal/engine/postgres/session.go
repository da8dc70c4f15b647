package postgres

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/mask"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/jackc/pgx/v5/pgproto3"
)

// fatal is an error the client should see as a FATAL ErrorResponse.
type fatal struct {
	code, msg, hint string
}

func (f *fatal) Error() string { return f.msg }

// passParams are startup parameters forwarded upstream. Others (options,
// search_path, role, replication, ...) could change who the session is or
// how names resolve, so they are not.
var passParams = map[string]bool{
	"application_name": true, "DateStyle": true, "TimeZone": true, "IntervalStyle": true,
	"extra_float_digits": true, "datestyle": true, "timezone": true, "intervalstyle": true,
}

// handle runs one client connection through its steps. authenticated
// frees the connection's unauthenticated slot once its token is checked.
func (e *Engine) handle(ctx context.Context, c net.Conn, authenticated func()) {
	defer c.Close()
	source := c.RemoteAddr().String()
	// One deadline covers the TLS handshake, the startup packet and the
	// password message: a client that dawdles anywhere before presenting
	// its token is cut off, however it spreads its bytes.
	handshake := e.opts.HandshakeTimeout
	c.SetDeadline(time.Now().Add(handshake))

	conn, startup, err := e.startup(ctx, c)
	if err != nil || startup == nil {
		e.refuseHandshake(conn, err, handshake)
		return
	}
	connection, token, err := e.authenticate(conn, startup, c.RemoteAddr())
	if err != nil {
		e.refuseHandshake(conn, err, handshake)
		return
	}
	gs, err := e.opts.Pipeline.Authenticate(ctx, token, connection, protocolOf(c), source)
	authenticated()
	switch {
	case errors.Is(err, gateway.ErrAuth):
		e.refuse(conn, &fatal{code: codeInvalidPassword, msg: "gatehouse: " + strings.TrimPrefix(err.Error(), gateway.ErrAuth.Error()+": ")})
		return
	case errors.Is(err, gateway.ErrForbidden):
		e.refuse(conn, &fatal{code: codeInvalidAuthorization, msg: "gatehouse: " + strings.TrimPrefix(err.Error(), gateway.ErrForbidden.Error()+": ")})
		return
	case errors.Is(err, gateway.ErrTooManySessions):
		e.refuse(conn, &fatal{code: codeTooManyConnections, msg: "gatehouse: " + err.Error()})
		return
	case err != nil:
		e.refuse(conn, &fatal{code: codeCannotConnectNow, msg: "gatehouse: cannot open the session: " + gateway.AuditRefusal(err)})
		return
	}
	defer gs.Close()
	target, _ := e.opts.Connections(connection)
	database := startup.Parameters["database"]
	if database == "" {
		database = target.Database
	}
	if !target.Serves(database) {
		served := target.Databases
		if len(served) == 0 {
			served = []string{target.Database}
		}
		reason := fmt.Sprintf("connection %s does not serve database %q (it serves: %s)", connection, database, strings.Join(served, ", "))
		e.auditSession(gs, audit.Event{Kind: audit.KindDecision, Action: "connect", Resource: connection, Decision: "deny", Reason: reason, Details: map[string]string{"database": database}})
		e.refuse(conn, &fatal{code: codeInsufficientPrivilege, msg: "gatehouse: " + reason})
		return
	}
	s := e.newSession(conn, gs, startup, target, database)
	// The upstream dial has its own bound; the client is not read meanwhile.
	c.SetDeadline(time.Time{})
	up, err := e.dial(ctx, connection, database, s.roBase, startup)
	if err != nil {
		e.opts.Logger.Warn("postgres upstream connect failed", "connection", connection, "session", gs.ID, "err", err)
		e.refuse(conn, e.dialFatal(connection, err))
		return
	}
	defer up.Conn.Close()
	if f := s.attach(up); f != nil {
		e.refuse(conn, f)
		return
	}
	pid, secret := e.register(connection, up)
	defer e.unregister(pid)

	// A client that does not read its AuthenticationOk does not hold the
	// session open either.
	c.SetDeadline(time.Now().Add(handshake))
	if err := s.ready(pid, secret); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	e.auditSession(gs, audit.Event{Kind: "session.start", Details: map[string]string{"database": s.database, "application_name": startup.Parameters["application_name"]}})
	if e.opts.Recorder != nil {
		e.opts.Recorder.SessionStarted(store.RecSession{ID: gs.ID, Protocol: gs.Protocol, Connection: connection, Principal: gs.PrincipalUID(),
			OnBehalfOf: gs.Claims.Actor, Database: s.database, Source: source, Application: startup.Parameters["application_name"], Start: time.Now().UTC()})
	}
	reason := s.relay(ctx)
	e.opts.Logger.Debug("postgres session ended", "session", gs.ID, "reason", reason)
	e.auditSession(gs, audit.Event{Kind: "session.end", Reason: reason})
	if e.opts.Recorder != nil {
		e.opts.Recorder.SessionEnded(gs.ID, time.Now().UTC(), reason)
	}
}

// refuseHandshake ends a startup exchange that failed before the token was
// read: a client that ran out the handshake deadline is told so (and
// counted); others get their error as refuse sends it.
func (e *Engine) refuseHandshake(c net.Conn, err error, limit time.Duration) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		e.countRefused("handshake_timeout")
		err = &fatal{code: codeProtocolViolation, msg: fmt.Sprintf("gatehouse: the startup exchange did not finish within %s", limit)}
	}
	e.refuse(c, err)
}

func (e *Engine) auditSession(gs *gateway.Session, ev audit.Event) {
	ev.Principal, ev.OnBehalfOf, ev.TokenID = gs.PrincipalUID(), gs.Claims.Actor, gs.Claims.ID
	ev.Session, ev.Source, ev.Connection = gs.ID, gs.Source, gs.Connection
	if _, err := e.opts.Pipeline.Audit.Enqueue(context.Background(), ev); err != nil {
		e.opts.Logger.Error("audit append failed", "kind", ev.Kind, "err", err)
	}
}

// refuse sends err to the client as FATAL, when there is anything to say.
func (e *Engine) refuse(c net.Conn, err error) {
	if c == nil || err == nil {
		return
	}
	var f *fatal
	if !errors.As(err, &f) {
		var tl errTooLarge
		if errors.As(err, &tl) {
			f = &fatal{code: codeProgramLimitExceeded, msg: "gatehouse: " + tl.Error()}
		} else {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				return
			}
			f = &fatal{code: codeProtocolViolation, msg: "gatehouse: " + err.Error()}
		}
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write(appendFrame(nil, 'E', errorMessage("FATAL", f.code, f.msg, "", f.hint)))
}

// startup reads the startup packet, negotiating TLS and answering
// GSSENCRequest 'N'; a CancelRequest is served and returns a nil startup.
func (e *Engine) startup(ctx context.Context, c net.Conn) (net.Conn, *pgproto3.StartupMessage, error) {
	conn := c
	tlsDone := false
	for range 3 {
		be := pgproto3.NewBackend(conn, conn)
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return conn, nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.CancelRequest:
			e.cancel(ctx, m.ProcessID, m.SecretKey)
			return conn, nil, nil
		case *pgproto3.GSSEncRequest:
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return conn, nil, err
			}
		case *pgproto3.SSLRequest:
			if tlsDone || e.opts.TLS == nil {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return conn, nil, err
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return conn, nil, err
			}
			tc := tls.Server(c, e.opts.TLS)
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, nil, fmt.Errorf("tls handshake: %w", err)
			}
			conn, tlsDone = tc, true
		case *pgproto3.StartupMessage:
			if m.ProtocolVersion != pgproto3.ProtocolVersion30 {
				// Gatehouse speaks protocol 3.0 (4-byte cancel keys);
				// clients asking for 3.2 are told so and continue on 3.0.
				b, _ := (&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0}).Encode(nil)
				if _, err := conn.Write(b); err != nil {
					return conn, nil, err
				}
			}
			if m.Parameters["replication"] != "" && m.Parameters["replication"] != "false" && m.Parameters["replication"] != "off" {
				return conn, nil, &fatal{code: codeFeatureNotSupported, msg: "gatehouse: replication connections are not supported"}
			}
			return conn, m, nil
		default:
			return conn, nil, &fatal{code: codeProtocolViolation, msg: "gatehouse: unexpected startup message"}
		}
	}
	return conn, nil, &fatal{code: codeProtocolViolation, msg: "gatehouse: too many startup negotiation messages"}
}

// authenticate asks for the token as a cleartext password. A token is a
// bearer credential, so it is refused without TLS unless the client is on
// loopback and the config allows that.
func (e *Engine) authenticate(conn net.Conn, m *pgproto3.StartupMessage, remote net.Addr) (connection, token string, err error) {
	user := m.Parameters["user"]
	connection = splitUser(user)
	if connection == "" {
		return "", "", &fatal{code: codeInvalidAuthorization, msg: "gatehouse: user must name a connection (user=CONNECTION or user=anything@CONNECTION)"}
	}
	if _, ok := e.opts.Connections(connection); !ok {
		return "", "", &fatal{code: codeInvalidAuthorization, msg: fmt.Sprintf("gatehouse: no postgres connection named %q", connection)}
	}
	_, isTLS := conn.(*tls.Conn)
	_, internal := conn.(internalConn)
	if !isTLS && !internal && !(e.opts.AllowInsecureLoopback && isLoopback(remote)) {
		return "", "", &fatal{code: codeInvalidAuthorization, msg: "gatehouse: a token may only be sent over TLS", hint: "connect with sslmode=require"}
	}
	be := pgproto3.NewBackend(conn, conn)
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		return "", "", err
	}
	if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return "", "", err
	}
	be.SetMaxBodyLen(16 << 10)
	msg, err := be.Receive()
	if err != nil {
		return "", "", err
	}
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return "", "", &fatal{code: codeProtocolViolation, msg: "gatehouse: expected a password message"}
	}
	if pw.Password == "" {
		return "", "", &fatal{code: codeInvalidPassword, msg: "gatehouse: a Gatehouse token is required as the password"}
	}
	return connection, strings.TrimSpace(pw.Password), nil
}

// dial connects upstream through the agent with the client's database and
// safe runtime parameters.
func (e *Engine) dial(ctx context.Context, connection, database string, readOnly bool, m *pgproto3.StartupMessage) (*agent.PostgresConn, error) {
	p := agent.PostgresParams{Database: database, Runtime: map[string]string{}}
	for k, v := range m.Parameters {
		if passParams[k] {
			p.Runtime[k] = v
		}
	}
	// The analysis reads SQL as the server does with these settings, and
	// masking works on UTF-8 text: the session always starts with them,
	// whatever the client, the role or the database asked for (a startup
	// parameter overrides ALTER ROLE and ALTER DATABASE settings), and
	// attach checks the server agreed.
	for k, v := range pinnedParams {
		p.Runtime[k] = v
	}
	if readOnly {
		p.Runtime["default_transaction_read_only"] = "on"
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return e.opts.Dialer.DialPostgres(dctx, connection, p)
}

// pinnedParams are the startup settings every upstream session runs with.
// search_path is pinned because the analysis names an unqualified table
// public.<name> (docs/sql-analysis.md): with the server's default
// "$user", public, a schema named after the upstream role would shadow
// public's tables. It is not reported back (not GUC_REPORT before
// PostgreSQL 18), so attach cannot check it; a startup parameter overrides
// role and database defaults.
var pinnedParams = map[string]string{"client_encoding": "UTF8", "standard_conforming_strings": "on", "search_path": "public"}

// reportedParams are the pinned parameters the server reports at startup.
var reportedParams = []string{"client_encoding", "standard_conforming_strings"}

// attach takes over the upstream connection after checking the server
// runs the session as the analysis assumes.
func (s *session) attach(up *agent.PostgresConn) *fatal {
	for _, k := range reportedParams {
		if got, want := up.ParameterStatus[k], pinnedParams[k]; got != want {
			return &fatal{code: codeFeatureNotSupported, msg: fmt.Sprintf("gatehouse: the upstream started the session with %s=%q, not %q; Gatehouse cannot govern it", k, got, want)}
		}
	}
	if got, ok := up.ParameterStatus["default_transaction_read_only"]; s.roBase && ok && got != "on" {
		return &fatal{code: codeFeatureNotSupported, msg: "gatehouse: the upstream did not start the read-only session read-only"}
	}
	s.roOn = s.roBase // asked for at startup; servers before 14 do not report it
	if v, ok := up.ParameterStatus["default_transaction_read_only"]; ok {
		s.roOn = v == "on"
	}
	s.serverUTF8 = up.ParameterStatus["server_encoding"] == "UTF8"
	s.up = up
	s.ur = newFrameReader(up.Conn, s.e.opts.MaxMessage)
	s.uw = bufio.NewWriterSize(up.Conn, 32<<10)
	s.txStatus = up.TxStatus
	if s.txStatus == 0 {
		s.txStatus = 'I'
	}
	return nil
}

// ready completes startup: AuthenticationOk, the upstream's parameters, our
// own key data and ReadyForQuery.
func (s *session) ready(pid uint32, secret [4]byte) error {
	var b []byte
	b = appendFrame(b, 'R', []byte{0, 0, 0, 0})
	for k, v := range s.up.ParameterStatus {
		body, _ := (&pgproto3.ParameterStatus{Name: k, Value: v}).Encode(nil)
		b = append(b, body...)
	}
	kd, _ := (&pgproto3.BackendKeyData{ProcessID: pid, SecretKey: secret[:]}).Encode(nil)
	b = append(b, kd...)
	tx := s.up.TxStatus
	if tx == 0 {
		tx = 'I'
	}
	b = appendFrame(b, 'Z', []byte{tx})
	_, err := s.client.Write(b)
	return err
}

func (e *Engine) newSession(conn net.Conn, gs *gateway.Session, m *pgproto3.StartupMessage, target Target, database string) *session {
	s := &session{
		e: e, client: conn, gs: gs,
		cr:       newFrameReader(conn, e.opts.MaxMessage),
		cw:       bufio.NewWriterSize(conn, 32<<10),
		database: database,
		fe:       newFrontState(),
		be:       newBackState(),
		target:   target,
		defs:     map[string]*stmtDef{},
		changed:  make(chan struct{}),
	}
	s.roBase = s.readOnlyBase()
	s.roWant = s.roBase
	if e.opts.Masker != nil {
		s.masker = e.opts.Masker.For(mask.Principal{ID: gs.PrincipalUID(), Groups: gs.Claims.Groups, ClearText: gs.ClearText})
	}
	return s
}
