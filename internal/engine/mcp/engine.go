package mcp

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/mask"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Connection is a configured connection as the tools show it.
type Connection struct {
	Name     string
	Type     string // postgres, ...
	Database string // the default database, for postgres
}

// Options configure the engine. Pipeline and Connections are required.
type Options struct {
	Pipeline *gateway.Pipeline
	// Connections lists the configured connections.
	Connections func() []Connection
	// ServePostgres serves one in-process client connection through the
	// PostgreSQL engine's session steps (postgres.Engine.ServeInternal). The
	// SQL tools need it; nil leaves them answering that SQL is unavailable.
	ServePostgres func(ctx context.Context, c net.Conn)
	// Masker masks tool arguments in audit events; nil records them as
	// they are.
	Masker *mask.Masker
	// PublicURL is the gateway's API base URL as clients reach it
	// (https://gatehouse.example.com), for the protected resource metadata;
	// empty derives it from each request.
	PublicURL string
	// AuthorizationServers are issuers, besides the gateway itself, whose
	// tokens the gateway accepts directly (OIDC issuers with accept_direct).
	AuthorizationServers []string
	// MaxRows is the query tool's default row limit; MaxRowsLimit the most
	// a call may ask for.
	MaxRows, MaxRowsLimit int
	// ApprovalWait is how long a call whose statement is held waits before
	// answering "pending"; wait_seconds overrides it up to ApprovalWaitLimit.
	ApprovalWait, ApprovalWaitLimit time.Duration
	// Hold bounds how long a held statement waits in the background once its
	// call answered "pending"; ResultTTL how long a finished one's result is
	// kept for approval_status.
	Hold, ResultTTL time.Duration
	// Version is the server version reported to MCP clients.
	Version string
	Logger  *slog.Logger
}

// Engine serves MCP.
type Engine struct {
	opts    Options
	server  *mcp.Server
	http    *mcp.StreamableHTTPHandler
	pending *pendingCalls

	// closed is closed by Close; background work watches it.
	closed    chan struct{}
	closeOnce sync.Once
}

// New builds an engine.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&opts.MaxRows, 100)
	setDefault(&opts.MaxRowsLimit, max(opts.MaxRows, 1000))
	setDefault(&opts.ApprovalWait, 30*time.Second)
	setDefault(&opts.ApprovalWaitLimit, max(opts.ApprovalWait, 5*time.Minute))
	setDefault(&opts.Hold, time.Hour)
	setDefault(&opts.ResultTTL, 15*time.Minute)
	if opts.Version == "" {
		opts.Version = "dev"
	}
	e := &Engine{opts: opts, closed: make(chan struct{})}
	e.pending = newPendingCalls(opts.ResultTTL)
	e.server = mcp.NewServer(&mcp.Implementation{Name: "gatehouse", Title: "Gatehouse", Version: opts.Version}, &mcp.ServerOptions{
		Instructions: instructions,
		Logger:       opts.Logger,
	})
	e.addTools()
	e.http = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return e.server }, &mcp.StreamableHTTPOptions{
		Logger: opts.Logger,
		// Sessions an agent abandons without DELETE are closed after this.
		SessionTimeout: 30 * time.Minute,
		// The SDK's DNS-rebinding guard refuses a non-localhost Host on a
		// loopback listener, which is what a reverse proxy in front of a
		// gateway on 127.0.0.1 sends. The guard protects unauthenticated
		// local servers; every request here carries a bearer token that a
		// browser page cannot send on its own.
		DisableLocalhostProtection: true,
	})
	return e
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// instructions tell the model how to use the tools.
const instructions = `Gatehouse governs access to infrastructure. Call list_connections to see the connections your token may use, describe to see a connection's tables and columns (masked columns are marked), and query to run SQL. Every statement is checked against policy: a denied statement is an error carrying the policy's reason; do not retry it unchanged. A statement that needs a human's approval answers status "pending" with an approval_id: call approval_status with that id (or send the same query again) to get the result once it is approved. Sensitive values in results may be masked.`

// Handler serves /mcp and the OAuth metadata documents; mount it on the
// API listener for the paths Routes lists.
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mcp", e.requireToken(e.http))
	mux.HandleFunc("GET "+resourceMetadataPath, e.serveResourceMetadata)
	mux.HandleFunc("GET "+resourceMetadataPath+"/mcp", e.serveResourceMetadata)
	mux.HandleFunc("GET "+authServerMetadataPath, e.serveAuthServerMetadata)
	return mux
}

// Routes are the patterns Handler serves, for the API server's mux.
func (e *Engine) Routes() []string {
	return []string{"/mcp", resourceMetadataPath, resourceMetadataPath + "/mcp", authServerMetadataPath}
}

// Close ends every MCP session (so their open streams do not hold the
// HTTP server's shutdown) and the statements waiting in the background.
func (e *Engine) Close() {
	e.closeOnce.Do(func() {
		close(e.closed)
		for ss := range e.server.Sessions() {
			ss.Close()
		}
		e.pending.cancelAll()
	})
}
