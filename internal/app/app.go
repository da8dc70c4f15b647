package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/acceptloop"
	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/certs"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	mcpengine "github.com/gatehouse-dev/gatehouse/internal/engine/mcp"
	pgengine "github.com/gatehouse-dev/gatehouse/internal/engine/postgres"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/mask"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/tunnel"
)

// Core is the part of Gatehouse every process on the gateway host needs:
// the gateway itself and the admin commands of the CLI.
type Core struct {
	Config    *config.Config
	Logger    *slog.Logger
	Metrics   *metrics.Metrics
	Store     store.Store
	Audit     *audit.Log
	Identity  *identity.Service
	Approvals *approval.Service
	Admin     *admin.Local
}

type actorKey struct{}

// WithActor names who performs an admin operation, for the audit events it
// produces (the CLI user on the gateway host, or the API caller).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

func actorOf(ctx context.Context) string {
	s, _ := ctx.Value(actorKey{}).(string)
	return s
}

// LocalActor describes the operating-system user running the CLI.
func LocalActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "cli:" + name + "@" + host
}

// OpenCore opens the store, audit log and identity service of cfg.
func OpenCore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Core, error) {
	c := &Core{Config: cfg, Logger: logger, Metrics: metrics.New()}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var err error
	if c.Store, err = store.Open(ctx, cfg.Store, cfg.DataDir); err != nil {
		return nil, err
	}
	signer, verifier, err := audit.LoadOrCreateKeys(cfg.KeysDir())
	if err != nil {
		c.Store.Close()
		return nil, err
	}
	c.Audit, err = audit.Open(ctx, audit.Options{
		Store: c.Store, Signer: signer, Verifier: verifier, Logger: logger,
		CheckpointEvery: cfg.Audit.CheckpointEvery, CheckpointInterval: cfg.Audit.CheckpointInterval,
		UnsignedGrace: cfg.Audit.UnsignedGrace, CheckpointFile: cfg.AuditCheckpointFile(), WitnessURL: cfg.Audit.WitnessURL,
		Linger: lingerFor(cfg), QueueSize: cfg.Audit.QueueSize,
		OnCommit:     c.Metrics.ObserveCommit,
		OnWait:       c.Metrics.ObserveQueueWait,
		OnCheckpoint: c.Metrics.ObserveCheckpoint,
		OnExternal:   c.Metrics.ObserveExternal,
	})
	if err != nil {
		c.Store.Close()
		return nil, err
	}
	c.Metrics.GaugeFunc("gatehouse_audit_queue_depth", "Audit events waiting for a group commit.",
		func() float64 { return float64(c.Audit.QueueDepth()) })
	c.Identity, err = identity.New(ctx, cfg.Identity, cfg.KeysDir(), c.Store, identity.Options{
		Logger: logger, OnEvent: c.auditIdentity,
	})
	if err != nil {
		c.Close(ctx)
		return nil, err
	}
	idCfg := cfg.Identity
	maxTTL, skew := idCfg.MaxTTL, idCfg.ClockSkew
	if maxTTL == 0 {
		maxTTL = identity.DefaultMaxTTL
	}
	if skew == 0 {
		skew = identity.DefaultClockSkew
	}
	// Approving and seeing approvals are Cedar decisions, against the
	// policies Admin tests with: the gateway's active set once NewGateway
	// has one.
	authorize := admin.ApprovalAuthorizer(func() (*policy.Set, error) { return c.Admin.Policies() })
	if c.Approvals, err = newApprovals(cfg, c.Store, c.Audit, logger, authorize); err != nil {
		c.Close(ctx)
		return nil, err
	}
	c.Admin = &admin.Local{
		Approvals: c.Approvals,
		Store:     c.Store, Identity: c.Identity, Verifier: verifier,
		AuditVerify: AuditVerifyOptions(cfg), AuditErr: c.Audit.Err,
		Policies:  func() (*policy.Set, error) { return policy.Load(cfg.Policies) },
		RevokeFor: maxTTL + skew,
		Connections: func(ctx context.Context) ([]string, error) {
			return knownConnections(ctx, cfg, c.Store)
		},
	}
	return c, nil
}

// gaugeFuncs registers the metrics read at each scrape from the parts
// that hold them: agents connected, their tunnel streams, approvals
// pending (docs/metrics.md).
func (g *Gateway) gaugeFuncs() {
	g.Metrics.GaugeFunc("gatehouse_agents_connected", "Agents with a tunnel to this gateway node (the in-process agent included).",
		func() float64 { return float64(len(g.Agents.Agents())) })
	g.Metrics.GaugeFunc("gatehouse_tunnel_streams", "Streams open over agent tunnels (one per upstream session, plus control streams).",
		func() float64 {
			n := 0
			for _, a := range g.Agents.Agents() {
				n += a.Streams
			}
			return float64(n)
		})
	if g.Approvals != nil {
		g.Metrics.GaugeFunc("gatehouse_approvals_pending", "Approval requests waiting for a human's decision.",
			func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				as, err := g.Approvals.List(ctx, approval.Pending)
				if err != nil {
					return math.NaN() // unknown, not zero
				}
				return float64(len(as))
			})
	}
}

// knownConnections names every connection a token may be issued for: the
// config's own, those enrolled (unrevoked) agents serve, and the MCP
// tools' gatehouse connection.
func knownConnections(ctx context.Context, cfg *config.Config, st store.Store) ([]string, error) {
	names := []string{gateway.GatehouseConnection}
	for _, conn := range cfg.Connections {
		names = append(names, conn.Name)
	}
	agents, err := st.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range agents {
		if a.Revoked() {
			continue
		}
		for _, conn := range a.Connections {
			names = append(names, conn.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// auditIdentity turns identity events into audit events. Tokens never reach
// here, only their ids.
func (c *Core) auditIdentity(ctx context.Context, e identity.Event) {
	ev := audit.Event{Time: e.Time, TokenID: e.JTI, Reason: e.Reason, Details: map[string]string{}}
	switch e.Kind {
	case identity.EventTokenIssue:
		ev.Kind = audit.KindTokenIssue
	case identity.EventTokenRevoke:
		ev.Kind = audit.KindTokenRevoke
	case identity.EventKeyRotate:
		ev.Kind = audit.KindKeyRotate
	case identity.EventTokenExchange, identity.EventTokenExchangeDenied:
		ev.Kind = audit.KindTokenExchange
		ev.Decision = "allow"
		if e.Kind == identity.EventTokenExchangeDenied {
			ev.Decision = "deny"
		}
	default:
		ev.Kind = string(e.Kind)
	}
	if e.Subject != "" {
		kind := "Agent"
		if e.Principal == identity.KindUser {
			kind = "User"
		}
		ev.Principal = fmt.Sprintf("%s::%q", kind, e.Subject)
	}
	ev.OnBehalfOf = e.Actor
	set := func(k, v string) {
		if v != "" {
			ev.Details[k] = v
		}
	}
	set("by", actorOf(ctx))
	set("kid", e.KeyID)
	set("connections", strings.Join(e.Connections, ","))
	scopes := make([]string, len(e.Scopes))
	for i, s := range e.Scopes {
		scopes[i] = string(s)
	}
	set("scopes", strings.Join(scopes, " "))
	if !e.ExpiresAt.IsZero() {
		set("expires_at", e.ExpiresAt.UTC().Format(time.RFC3339))
	}
	set("external_issuer", e.ExternalIssuer)
	set("external_subject", e.ExternalSubject)
	set("rule", e.Rule)
	// Admin actions are rare and must not be lost: wait for durability.
	if _, err := c.Audit.Append(ctx, ev); err != nil {
		c.Logger.Error("audit append failed", "kind", ev.Kind, "err", err)
	}
}

// Close flushes the audit log (signing a final checkpoint) and closes the
// store.
func (c *Core) Close(ctx context.Context) error {
	var errs []error
	if c.Audit != nil {
		errs = append(errs, c.Audit.Close(ctx))
	}
	if c.Store != nil {
		errs = append(errs, c.Store.Close())
	}
	return errors.Join(errs...)
}

// Gateway is a serving Gatehouse: the core plus policy engine and listeners.
type Gateway struct {
	*Core
	Policy   *policy.Engine
	Pipeline *gateway.Pipeline
	Agent    agent.Dialer
	// Agents routes dials to connected agents; Tunnel serves their
	// tunnels (agents.go).
	Agents   *tunnel.Registry
	Tunnel   *tunnel.Server
	Analyzer *sqlguard.Analyzer
	Masker   *mask.Masker
	Recorder *recording.Recorder
	TLS      *tls.Config
	// Postgres serves the postgres listener and, in process, the MCP
	// engine's SQL tools; MCP is nil when mcp.disabled.
	Postgres *pgengine.Engine
	MCP      *mcpengine.Engine
	// Listening lists "name address" for each listener, once Start returns.
	Listening []string
	// Listen opens each listener (nil: net.Listen); tests replace it to
	// reach the sockets.
	Listen func(network, address string) (net.Listener, error)
	// metricsToken guards /metrics (metrics.token), resolved at start.
	metricsToken string

	servers []*http.Server
	// listeners are the accept loops readiness checks (listeners.go);
	// the API may already answer /readyz while later ones open.
	listenersMu sync.Mutex
	listeners   []*acceptloop.Listener
	wg          sync.WaitGroup
}

// NewGateway builds a gateway from cfg.
func NewGateway(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Gateway, error) {
	for _, name := range cfg.LiteralSecrets() {
		logger.Warn("connection password is written in the config file; prefer env:NAME or file:PATH", "connection", name)
	}
	for _, p := range cfg.UnresolvedSecrets() {
		logger.Warn("credential reference resolves to nothing; what uses it fails until it is set", "key", p.Key, "ref", p.Ref.String(), "err", p.Err)
	}
	core, err := OpenCore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	g := &Gateway{Core: core}
	g.Policy, err = policy.NewEngine(cfg.Policies)
	if err != nil {
		core.Close(ctx)
		return nil, fmt.Errorf("policies: %w", err)
	}
	g.Admin.Policies = func() (*policy.Set, error) { return g.Policy.Set(), nil }
	g.Pipeline = &gateway.Pipeline{Identity: g.Identity, Policy: g.Policy, Audit: g.Audit, Metrics: g.Metrics,
		Logger: logger, SyncAudit: cfg.Audit.Durability == "sync", Approvals: g.Approvals,
		SessionLimits: gateway.SessionLimits{PerPrincipal: cfg.Limits.SessionsPerPrincipal, Total: cfg.Limits.Sessions}}
	// Agents, remote and in-process, reached over tunnels (agents.go).
	if err := g.setupAgents(ctx); err != nil {
		core.Close(ctx)
		return nil, err
	}
	if ref := cfg.Metrics.Token; ref != "" {
		// Asked for, so fail closed: no open /metrics for a token that
		// does not resolve.
		if g.metricsToken, err = ref.Resolve(); err != nil {
			core.Close(ctx)
			return nil, fmt.Errorf("metrics.token: %w", err)
		}
	}
	g.gaugeFuncs()
	g.Analyzer = sqlguard.NewAnalyzer(20000)
	if cfg.MaskingEnabled() {
		if g.Masker, err = loadMasker(cfg); err != nil {
			core.Close(ctx)
			return nil, err
		}
	}
	if g.TLS, err = certs.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile, filepath.Join(cfg.DataDir, "tls")); err != nil {
		core.Close(ctx)
		return nil, err
	}
	g.Recorder = recording.New(g.Store, logger)
	g.Postgres = pgengine.New(pgengine.Options{
		Pipeline: g.Pipeline, Dialer: g.Agent, TLS: g.TLS, Analyzer: g.Analyzer, Masker: g.Masker, Recorder: g.Recorder,
		Connections: func(name string) (pgengine.Target, bool) {
			c, ok := g.Agents.Lookup(name, "postgres")
			return pgengine.Target{Database: c.Database, Databases: c.Databases, ReadOnly: c.ReadOnly, ReadOnlyFunctions: c.ReadOnlyFunctions}, ok
		},
		AllowInsecureLoopback: cfg.AllowInsecureLoopback, MaxMessage: cfg.Postgres.MaxMessageBytes,
		MaxQueryBytes: cfg.Postgres.MaxQueryBytes, MaxStatements: cfg.Postgres.MaxStatements, Logger: g.Logger,
		HandshakeTimeout: cfg.Limits.HandshakeTimeout, Unauthenticated: unauthenticatedLimits(cfg),
	})
	g.MCP = newMCPEngine(g)
	return g, nil
}

// loadMasker builds the masker from the rules file (or the built-in
// rules) and the deployment's HMAC key.
func loadMasker(cfg *config.Config) (*mask.Masker, error) {
	rules := mask.DefaultRules()
	if cfg.Masking.Rules != "" {
		raw, err := os.ReadFile(cfg.Masking.Rules)
		if err != nil {
			return nil, fmt.Errorf("masking rules: %w", err)
		}
		if rules, err = mask.ParseRules(raw); err != nil {
			return nil, err
		}
	}
	var key []byte
	if cfg.Masking.Key != "" {
		k, err := cfg.Masking.Key.Resolve()
		if err != nil {
			return nil, fmt.Errorf("masking key: %w", err)
		}
		key = []byte(k)
	} else {
		var err error
		if key, err = loadOrCreateKey(filepath.Join(cfg.KeysDir(), "mask.key")); err != nil {
			return nil, err
		}
	}
	return mask.New(rules, key)
}

// loadOrCreateKey reads a 32-byte random key, creating it (mode 0600).
func loadOrCreateKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil || len(k) < 16 {
			return nil, fmt.Errorf("key %s is malformed", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	k := make([]byte, 32)
	rand.Read(k)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return loadOrCreateKey(path) // another process created it first
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return k, f.Sync()
}

// Run starts every listener and background loop, and serves until ctx ends;
// then it shuts down cleanly.
func (g *Gateway) Run(ctx context.Context, ready func(*Gateway)) error {
	cfg := g.Config
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		g.Identity.Run(runCtx)
	}()
	go func() {
		defer g.wg.Done()
		g.Policy.Watch(runCtx, time.Second, g.onPolicyReload)
	}()
	if err := g.runAgents(runCtx); err != nil {
		cancel()
		g.wg.Wait()
		return err
	}

	var listeners []net.Listener
	if cfg.Listen.API != "" {
		ln, err := g.listen("api", cfg.Listen.API)
		if err != nil {
			cancel()
			g.wg.Wait()
			return fmt.Errorf("listen api %s: %w", cfg.Listen.API, err)
		}
		listeners = append(listeners, ln)
		srv := &http.Server{
			Handler: (&api.Server{
				Admin: g.Admin, WithActor: WithActor, Identity: g.Identity, Audit: g.Audit,
				Metrics: g.Metrics.Handler(), MetricsToken: g.metricsToken, Ready: g.ready, Logger: g.Logger, Mount: g.mcpRoutes(),
			}).Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			// Without it a keep-alive connection that made one request may
			// idle forever, one descriptor each; streams are not idle.
			IdleTimeout: 2 * time.Minute,
			BaseContext: func(net.Listener) context.Context { return runCtx },
			ErrorLog:    slog.NewLogLogger(g.Logger.Handler(), slog.LevelWarn),
		}
		srv.RegisterOnShutdown(g.closeMCP)
		g.servers = append(g.servers, srv)
		g.Listening = append(g.Listening, "api "+ln.Addr().String())
		if g.MCP != nil {
			g.Listening = append(g.Listening, "mcp http://"+ln.Addr().String()+"/mcp")
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.Logger.Error("api server stopped", "err", err)
			}
		}()
	}
	if cfg.Listen.Postgres != "" {
		ln, err := g.listen("postgres", cfg.Listen.Postgres)
		if err != nil {
			cancel()
			for _, l := range listeners {
				l.Close()
			}
			g.wg.Wait()
			return fmt.Errorf("listen postgres %s: %w", cfg.Listen.Postgres, err)
		}
		eng := g.Postgres
		g.Listening = append(g.Listening, "postgres "+ln.Addr().String())
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := eng.Serve(runCtx, ln); err != nil {
				g.Logger.Error("postgres listener stopped", "err", err)
			}
		}()
	}
	g.warnDescriptorBudget()
	g.Audit.Enqueue(context.Background(), audit.Event{Kind: audit.KindGatewayStart, Details: map[string]string{"listening": strings.Join(g.Listening, ", ")}})
	g.Logger.Info("gatehouse started", "listening", g.Listening, "store", store.Redact(cfg.Store), "policies", g.Policy.Set().Len())
	if ready != nil {
		ready(g)
	}

	<-ctx.Done()
	g.Logger.Info("gatehouse stopping")
	shutdownCtx, done := context.WithTimeout(context.Background(), 15*time.Second)
	defer done()
	for _, srv := range g.servers {
		srv.Shutdown(shutdownCtx)
	}
	cancel()
	g.wg.Wait()
	g.Recorder.Close()
	g.Audit.Enqueue(context.Background(), audit.Event{Kind: audit.KindGatewayStop})
	return g.Close(shutdownCtx)
}

func (g *Gateway) onPolicyReload(r policy.ReloadResult) {
	ev := audit.Event{Kind: audit.KindPolicyReload, Decision: "ok", Details: map[string]string{
		"dir": r.Dir, "policies": fmt.Sprint(r.Policies), "files": fmt.Sprint(r.Files),
	}}
	if r.Err != nil {
		ev.Decision = "error"
		ev.Reason = r.Err.Error()
		g.Metrics.PolicyReloads.WithLabelValues("error").Inc()
		g.Logger.Error("policy reload refused; previous policies stay active", "err", r.Err)
	} else {
		g.Metrics.PolicyReloads.WithLabelValues("ok").Inc()
		g.Logger.Info("policies reloaded", "policies", r.Policies, "files", r.Files)
	}
	if _, err := g.Audit.Enqueue(context.Background(), ev); err != nil {
		g.Logger.Error("audit append failed", "kind", ev.Kind, "err", err)
	}
}

// AuditVerifyOptions are what `audit verify` checks on this host besides
// the store: the checkpoint file and the grace for unsigned events.
func AuditVerifyOptions(cfg *config.Config) audit.VerifyOptions {
	opts := audit.VerifyOptions{UnsignedGrace: cfg.Audit.UnsignedGrace}
	if f := cfg.AuditCheckpointFile(); f != "" {
		opts.CheckpointFiles = []string{f}
	}
	return opts
}

// lingerFor is the audit writer's gathering time: with group durability no
// statement waits on a commit, so events are gathered for 5 ms; with sync
// durability every statement waits, so commits go out at once.
func lingerFor(cfg *config.Config) time.Duration {
	if cfg.Audit.Durability == "sync" {
		return 0
	}
	return 5 * time.Millisecond
}
