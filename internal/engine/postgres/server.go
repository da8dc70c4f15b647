package postgres

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/acceptloop"
	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/mask"
	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
)

// DefaultMaxMessage bounds one protocol message (64 MiB).
const DefaultMaxMessage = 64 << 20

// codeTooManyConnections is SQLSTATE 53300, what PostgreSQL sends when it
// is full (PostgreSQL docs, Appendix A).
const codeTooManyConnections = "53300"

// DefaultHandshakeTimeout bounds the startup exchange (TLS handshake,
// startup packet, password message) when Options.HandshakeTimeout is 0.
const DefaultHandshakeTimeout = 10 * time.Second

// Options configure the engine. Pipeline, Dialer and Connections are
// required.
type Options struct {
	Pipeline *gateway.Pipeline
	Dialer   agent.Dialer
	// Connections reports whether a postgres connection exists, and how it
	// is configured.
	Connections func(name string) (Target, bool)
	// TLS answers SSLRequest; nil refuses TLS.
	TLS *tls.Config
	// AllowInsecureLoopback accepts a token without TLS from loopback.
	AllowInsecureLoopback bool
	// MaxMessage bounds one message from the client or upstream.
	MaxMessage int
	// MaxQueryBytes and MaxStatements bound the SQL text of one Query or
	// Parse that is analysed (limits.go).
	MaxQueryBytes int
	MaxStatements int
	Analyzer      *sqlguard.Analyzer
	// Masker masks result values; nil disables masking.
	Masker *mask.Masker
	// Recorder receives statement records; nil disables recording.
	Recorder Recorder
	Logger   *slog.Logger
	// HandshakeTimeout bounds everything from accept until the token has
	// been read (TLS handshake, startup packet, password message), so an
	// idle or trickling client cannot hold a connection for long.
	HandshakeTimeout time.Duration
	// Unauthenticated caps the listener's connections that have not yet
	// presented a verified token; zero fields mean no cap.
	Unauthenticated acceptloop.Limits
}

// Target is what the engine needs to know about a postgres connection.
type Target struct {
	// Database is the default database; Databases every database the
	// connection serves (Database alone when empty). A client asking for
	// another is refused.
	Database  string
	Databases []string
	// ReadOnly makes every session on the connection read-only
	// (default_transaction_read_only, readonly.go).
	ReadOnly bool
	// ReadOnlyFunctions are functions ("schema.name") an administrator
	// declares read-only whatever the catalog says.
	ReadOnlyFunctions []string
}

// Serves reports whether the connection serves database db.
func (t Target) Serves(db string) bool {
	return db == t.Database || slices.Contains(t.Databases, db)
}

// Engine serves the PostgreSQL protocol.
type Engine struct {
	opts Options
	gate *acceptloop.Gate

	mu   sync.Mutex
	keys map[uint32]*cancelKey // by the pid the client was given

	cats       catalogs                 // function catalogs, by connection and database (funcs.go)
	parseSlots chan struct{}            // large texts parsed at once (limits.go)
	bigParse   map[string]chan struct{} // one large parse per principal (limits.go); guarded by mu

	wg sync.WaitGroup
}

// cancelKey maps the key data a client holds to its upstream backend.
type cancelKey struct {
	secret     [4]byte
	connection string
	upPID      uint32
	upSecret   []byte
}

// New builds an engine.
func New(opts Options) *Engine {
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = DefaultMaxMessage
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Analyzer == nil {
		opts.Analyzer = sqlguard.NewAnalyzer(10000)
	}
	if opts.MaxQueryBytes <= 0 {
		opts.MaxQueryBytes = DefaultMaxQueryBytes
	}
	if opts.MaxStatements <= 0 {
		opts.MaxStatements = DefaultMaxStatements
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	e := &Engine{opts: opts, keys: map[uint32]*cancelKey{}, parseSlots: make(chan struct{}, parseSlots)}
	e.gate = &acceptloop.Gate{Limits: opts.Unauthenticated, Name: "postgres", Logger: opts.Logger,
		Refuse: refuseOverLimit, OnRefuse: func(limit string) { e.countRefused("unauthenticated_" + limit) }}
	return e
}

// Serve accepts clients on ln until ctx ends, then closes ln and waits for
// sessions to finish. Transient accept errors (out of descriptors) are
// ridden out, and connections over Options.Unauthenticated are refused at
// once (acceptloop).
func (e *Engine) Serve(ctx context.Context, ln net.Listener) error {
	return acceptloop.Serve(ctx, ln, &e.wg, "postgres accept", e.gate, func(c net.Conn, authenticated func()) {
		e.handle(ctx, c, authenticated)
	})
}

// refuseOverLimit tells a client over the unauthenticated caps why, as
// PostgreSQL does when it is full: FATAL 53300. It is written before the
// startup packet is read, with a short deadline and no read, so a slow
// client costs nothing; a client that asked for TLS first reads the
// ErrorResponse as a refusal of TLS.
func refuseOverLimit(c net.Conn, err *acceptloop.LimitError) {
	c.SetWriteDeadline(time.Now().Add(250 * time.Millisecond))
	c.Write(appendFrame(nil, 'E', errorMessage("FATAL", codeTooManyConnections, "gatehouse: "+err.Error(), "", "")))
}

// countRefused counts a connection closed before it authenticated.
func (e *Engine) countRefused(reason string) {
	if p := e.opts.Pipeline; p != nil && p.Metrics != nil {
		p.Metrics.ConnectionsRefused.WithLabelValues("postgres", reason).Inc()
	}
}

// Unauthenticated is the number of the listener's connections that have
// not yet authenticated.
func (e *Engine) Unauthenticated() int { return e.gate.Open() }

// ServeInternal serves one in-process client connection (a net.Pipe end
// from another part of the gateway, such as the MCP engine's SQL tools).
// It runs the same session steps as a network client; the connection never
// leaves the process, so a token may be sent on it without TLS.
func (e *Engine) ServeInternal(ctx context.Context, c net.Conn) {
	e.wg.Add(1)
	defer e.wg.Done()
	// In process, the caller has already verified the token of the call
	// this session serves: no unauthenticated slot to hold.
	ictx, done := internalContext(ctx) // its end reason is the call's end
	defer done()
	e.handle(ictx, internalConn{c}, func() {})
}

// internalConn marks an in-process connection.
type internalConn struct{ net.Conn }

// register hands out the key data the client will use to cancel.
func (e *Engine) register(conn string, up *agent.PostgresConn) (pid uint32, secret [4]byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		var b [8]byte
		rand.Read(b[:])
		pid = binary.BigEndian.Uint32(b[:4]) &^ (1 << 31)
		if _, taken := e.keys[pid]; pid != 0 && !taken {
			copy(secret[:], b[4:])
			e.keys[pid] = &cancelKey{secret: secret, connection: conn, upPID: up.PID, upSecret: up.SecretKey}
			return pid, secret
		}
	}
}

func (e *Engine) unregister(pid uint32) {
	e.mu.Lock()
	delete(e.keys, pid)
	e.mu.Unlock()
}

// cancel forwards a CancelRequest whose key matches; others are ignored,
// as PostgreSQL does, so a guesser learns nothing.
func (e *Engine) cancel(ctx context.Context, pid uint32, secret []byte) {
	e.mu.Lock()
	k, ok := e.keys[pid]
	e.mu.Unlock()
	if !ok || len(secret) != 4 || subtle.ConstantTimeCompare(k.secret[:], secret) != 1 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.opts.Dialer.CancelPostgres(ctx, k.connection, k.upPID, k.upSecret); err != nil {
		e.opts.Logger.Warn("postgres cancel failed", "connection", k.connection, "err", err)
	}
}

// isLoopback reports whether addr is a loopback address.
func isLoopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// splitUser parses the startup user: "conn" or "anything@conn".
func splitUser(user string) (connection string) {
	if i := strings.LastIndexByte(user, '@'); i >= 0 {
		return user[i+1:]
	}
	return user
}
