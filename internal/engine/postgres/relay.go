package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/mask"
)

// session relays one client session. The frontend goroutine reads the
// client and writes upstream; the backend goroutine reads upstream and
// writes the client. They share only the queue of expected responses.
type session struct {
	e        *Engine
	client   net.Conn
	up       *agent.PostgresConn
	gs       *gateway.Session
	database string
	masker   *mask.Masker // this principal's view; nil: no masking

	cr *frameReader  // client → gateway
	cw *bufio.Writer // gateway → client (backend goroutine only, after ready)
	ur *frameReader  // upstream → gateway
	uw *bufio.Writer // gateway → upstream (frontend goroutine only)

	mu    sync.Mutex
	queue []*expect // responses owed to the client, in order

	// cwMu serialises client writes: the backend goroutine writes
	// responses, the frontend writes approval notices while it holds a
	// statement.
	cwMu sync.Mutex

	fe      *frontState // frontend goroutine only
	be      *backState  // backend goroutine only
	catalog *catalog    // backend goroutine only; nil until first needed

	target Target // the connection as configured
	roBase bool   // read-only by its principal: the second wall applies (readonly.go)
	// serverUTF8: the database's encoding is UTF-8, so names are kept as
	// the client sends them (badName, FlagLongName).
	serverUTF8 bool

	// Guarded by mu: the session's model of the upstream, as confirmed by
	// the upstream's answers (prepared.go, lexical.go).
	defs     map[string]*stmtDef // prepared statements, by client name
	lex      lexState
	roWant   bool          // default_transaction_read_only should be on
	roOn     bool          // the server last reported it on
	txStatus byte          // from the last ReadyForQuery
	changed  chan struct{} // closed and replaced when waiters should look again
	waiters  int
	ended    bool // the backend goroutine has stopped
	// schemaDirty: a statement that may change functions completed since
	// the last ReadyForQuery outside a transaction; until one, the function
	// catalog is reread at every ReadyForQuery (its reader sees only what
	// is committed).
	schemaDirty bool
	// skipping: the upstream is discarding every message until the next
	// Sync, after an error in the extended protocol (PostgresMain's
	// ignore_till_sync), and the client has not sent that Sync yet.
	skipping bool
}

// expect is one message (or simple query) whose response the backend
// goroutine has yet to see.
type expect struct {
	kind byte   // 'Q' query or function call, 'P', 'B', 'D', 'E', 'C', 'S'
	name string // statement (P, D 'S'), portal (B, D 'P', E) or closed object
	stmt string // for B: the statement bound
	// describe is 'S' or 'P' for a Describe.
	describe byte
	// formats are a Bind's result format codes.
	formats []int16
	// swallow marks an injected message whose response the client never
	// asked for.
	swallow bool
	// deny, when set, is the substitute's marker and the client's error.
	deny *denial
	rec  *stmtRecord
	// def is what a Parse defines once the upstream confirms it.
	def *stmtDef
	// effects are what a simple query's statements (or an Execute) do to
	// the prepared statements, applied as each completes.
	effects []stmtEffect
	ccSeen  int // CommandCompletes seen so far for a simple query
	// schema: the statement may change functions, so the function catalog
	// is reread once it completes.
	schema bool
	// injected marks a query of the gateway's own, answered to nobody.
	injected bool
	// For COPY FROM STDIN: copyIn marks a Query or Execute whose COPY the
	// upstream started (CopyInResponse); copyOf marks a Sync sent while
	// that COPY may be running, which the upstream ignores if it reads it
	// in copy mode; afterData, one sent after CopyData.
	copyIn    bool
	copyOf    *expect
	afterData bool
}

type denial struct {
	marker string // unique text that makes the upstream reject the substitute
	reason string
	code   string
}

// push queues what the upstream will answer for a message forwarded now.
// While the upstream skips to the next Sync it answers nothing, a simple
// query included, so nothing but that Sync is queued.
func (s *session) push(x *expect) {
	s.mu.Lock()
	if s.skipping && x.kind != 'S' {
		s.mu.Unlock()
		s.finish(x, "skipped: an earlier message of the batch failed")
		return
	}
	s.skipping = false
	s.queue = append(s.queue, x)
	s.mu.Unlock()
}

// popLocked removes the oldest expectation; s.mu is held.
func (s *session) popLocked() *expect {
	if len(s.queue) == 0 {
		return nil
	}
	x := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		s.queue = s.queue[:0:0] // let the backing array go
	}
	if x.runs() {
		s.lex.ranSinceRFQ = true
	}
	s.broadcastLocked()
	return x
}

// head returns the oldest expectation, or nil.
func (s *session) head() *expect {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return nil
	}
	return s.queue[0]
}

func (s *session) pop() *expect {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.popLocked()
}

// skipToSync drops what the upstream will skip after an error in the
// extended protocol: everything before the next Sync, simple queries
// included (PostgreSQL's PostgresMain ignores every message but Sync
// while it skips).
func (s *session) skipToSync() []*expect {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dropped []*expect
	for len(s.queue) > 0 && s.queue[0].kind != 'S' {
		dropped = append(dropped, s.queue[0])
		s.queue = s.queue[1:]
	}
	// No Sync sent yet: what the client sends until it is skipped too.
	s.skipping = len(s.queue) == 0
	s.broadcastLocked()
	return dropped
}

// relay runs both directions until either side ends, and returns why.
// Only the backend goroutine writes to the client, so a FATAL found by the
// frontend is sent after the backend goroutine has stopped.
func (s *session) relay(ctx context.Context) string {
	ctx, stopWatch := s.watchToken(ctx) // expiry.go: ends ctx when the token does
	defer stopWatch()
	fe, be := make(chan error, 1), make(chan error, 1)
	go func() { fe <- s.frontend(ctx) }()
	go func() {
		err := s.backend(ctx)
		s.mu.Lock()
		s.ended = true
		s.waiters++ // wake everyone: nothing will be answered any more
		s.broadcastLocked()
		s.waiters--
		s.mu.Unlock()
		be <- err
	}()
	wait := func(c chan error) {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
		}
	}
	var err error
	select {
	case err = <-fe:
		s.up.Conn.Close()
		wait(be)
		var f *fatal
		if errors.As(err, &f) {
			s.sendFatal(f.code, f.msg)
		} else if tl := (errTooLarge{}); errors.As(err, &tl) {
			s.sendFatal(codeProgramLimitExceeded, "gatehouse: "+tl.Error())
		} else if errors.Is(err, agent.ErrAgentLost) {
			s.sendFatal(codeConnectionFailure, s.agentLost())
		}
		s.client.Close()
	case err = <-be:
		var f *fatal
		if errors.As(err, &f) {
			s.sendFatal(f.code, f.msg)
		} else if errors.Is(err, agent.ErrAgentLost) {
			s.sendFatal(codeConnectionFailure, s.agentLost())
		} else if errors.Is(err, errUpstreamEOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			s.sendFatal(codeConnectionFailure, "gatehouse: the upstream connection was lost")
		}
		s.client.Close()
		s.up.Conn.Close()
		wait(fe)
	case <-ctx.Done():
		err = s.endedBy(ctx) // expiry.go: the token ended, or the gateway is shutting down
		s.up.Conn.Close()
		wait(be)
		s.sendFatal(s.endFatal(err))
		s.client.Close()
		wait(fe)
	}
	if s.catalog != nil {
		s.catalog.close()
	}
	return endReason(err)
}

var (
	errShutdown  = errors.New("gateway shutdown")
	errTerminate = errors.New("client terminated")
)

func endReason(err error) string {
	switch {
	case err == nil, errors.Is(err, errTerminate):
		return "client terminated"
	case errors.Is(err, errShutdown):
		return "gateway shutdown"
	case errors.Is(err, errUpstreamEOF):
		return "upstream closed the connection"
	case errors.Is(err, agent.ErrAgentLost):
		return err.Error() // names the agent and why its tunnel ended
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "client disconnected"
	}
	return err.Error()
}

var errUpstreamEOF = errors.New("upstream closed")

// agentLost is the client's message when the agent holding the upstream
// connection goes away mid-session.
func (s *session) agentLost() string {
	return "gatehouse: the agent serving " + s.gs.Connection + " went away; the session has ended"
}

// writeClient writes one message to the client and flushes it, between
// the backend goroutine's messages (NoticeResponse may arrive at any time:
// PostgreSQL docs, "Asynchronous Operations").
func (s *session) writeClient(typ byte, body []byte) error {
	s.cwMu.Lock()
	defer s.cwMu.Unlock()
	if err := writeFrame(s.cw, typ, body); err != nil {
		return err
	}
	return s.cw.Flush()
}

// sendFatal tells the client why the session ends; it is called once the
// backend goroutine has stopped writing.
func (s *session) sendFatal(code, msg string) {
	s.cw.Flush()
	s.client.SetWriteDeadline(time.Now().Add(2 * time.Second))
	s.client.Write(appendFrame(nil, 'E', errorMessage("FATAL", code, msg, "", "")))
}

func protocolError(format string, args ...any) error {
	return &fatal{code: codeProtocolViolation, msg: "gatehouse: " + fmt.Sprintf(format, args...)}
}
