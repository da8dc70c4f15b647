package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/tunnel"
)

// localAgentName names the in-process agent in the registry and logs. The
// parentheses keep it apart from any enrollable name.
const localAgentName = "(in-process)"

// Audit kinds for administrators' agent operations (the tunnel reports
// enroll, connect, disconnect and renew itself).
const (
	kindAgentEnrollToken = "agent.enroll_token"
	kindAgentRevoke      = "agent.revoke"
)

// agentCADir holds the agent CA (ca.crt, ca.key mode 0600).
func agentCADir(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "agents") }

// setupAgents builds the registry every engine dials through and the
// tunnel server that remote agents (listen.agents) and the in-process
// agent (connections in the gateway's own config) connect to.
func (g *Gateway) setupAgents(ctx context.Context) error {
	cfg := g.Config
	g.Agents = tunnel.NewRegistry(g.Logger, cfg.Agents.DialWaitTime())
	g.Agent = g.Agents
	g.Tunnel = &tunnel.Server{
		Store: g.Store, Registry: g.Agents, Logger: g.Logger, OnEvent: g.auditAgent,
		Heartbeat: cfg.Agents.HeartbeatInterval(), CertTTL: cfg.Agents.CertLifetime(), Node: nodeName(cfg),
		Unauthenticated: unauthenticatedLimits(cfg),
	}
	if cfg.Listen.Agents != "" {
		ca, err := tunnel.LoadOrCreateCA(agentCADir(cfg))
		if err != nil {
			return err
		}
		g.Tunnel.CA = ca
	}
	// Connections enrolled agents served before: a client asking for one
	// while its agent reconnects hears that the agent is away.
	rows, err := g.Store.ListAgents(ctx)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if r.Revoked() {
			continue
		}
		for _, c := range r.Connections {
			g.Agents.Remember([]tunnel.ConnInfo{{Name: c.Name, Type: c.Type, Database: c.Database, Databases: c.Databases,
				ReadOnly: c.ReadOnly, ReadOnlyFunctions: c.ReadOnlyFunctions}})
		}
	}
	return nil
}

func nodeName(cfg *config.Config) string {
	if cfg.Listen.Agents != "" {
		return cfg.Listen.Agents
	}
	return "in-process"
}

// runAgents starts the agent listener and the in-process agent, and waits
// until the in-process agent has registered its connections.
func (g *Gateway) runAgents(ctx context.Context) error {
	cfg := g.Config
	if cfg.Listen.Agents != "" {
		ln, err := g.listen("agents", cfg.Listen.Agents)
		if err != nil {
			return fmt.Errorf("listen agents %s: %w", cfg.Listen.Agents, err)
		}
		g.Listening = append(g.Listening, "agents "+ln.Addr().String())
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := g.Tunnel.Serve(ctx, ln); err != nil {
				g.Logger.Error("agent listener stopped", "err", err)
			}
		}()
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		<-ctx.Done()
		g.Tunnel.Wait()
	}()
	if len(cfg.Connections) == 0 {
		return nil
	}
	if cfg.Listen.Agents != "" {
		g.Logger.Info("the gateway's own config names connections: an in-process agent holds their credentials; move them to an agent.yaml to keep them off the gateway", "connections", len(cfg.Connections))
	}
	// The in-process agent is the real agent loop over an in-memory
	// connection: the same hello, heartbeats, streams and authenticated
	// dial as a remote one.
	local := agent.New(cfg.Connections, g.Logger)
	client := &tunnel.Client{
		Name: localAgentName, Version: "in-process", Dialer: local, Connections: connInfos(local.Served()),
		Connect: g.Tunnel.LocalConnect(localAgentName), Logger: g.Logger,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second,
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := client.Run(ctx); err != nil {
			g.Logger.Error("in-process agent stopped", "err", err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, c := range cfg.Connections {
		if err := g.Agents.WaitFor(wctx, c.Name); err != nil {
			return fmt.Errorf("in-process agent: %w", err)
		}
	}
	return nil
}

func connInfos(conns []config.Connection) []tunnel.ConnInfo {
	out := make([]tunnel.ConnInfo, len(conns))
	for i, c := range conns {
		out[i] = tunnel.ConnInfo{Name: c.Name, Type: c.Type, Database: c.Database, Databases: c.Databases,
			ReadOnly: c.ReadOnly, ReadOnlyFunctions: c.ReadOnlyFunctions}
	}
	return out
}

// auditAgent records tunnel events. They name the agent in details: the
// audit principal is reserved for who acts on a connection.
func (c *Core) auditAgent(e tunnel.Event) {
	ev := audit.Event{Kind: e.Kind, Source: e.Source, Decision: e.Decision, Reason: e.Reason, Details: map[string]string{"agent": e.Agent}}
	for k, v := range e.Details {
		ev.Details[k] = v
	}
	if _, err := c.Audit.Enqueue(context.Background(), ev); err != nil {
		c.Logger.Error("audit append failed", "kind", ev.Kind, "err", err)
	}
}

// EnrollToken makes a one-time enrollment token for the agent name, valid
// for ttl (agents.enroll_ttl when 0). Only its hash is stored.
func (c *Core) EnrollToken(ctx context.Context, name string, ttl time.Duration) (string, time.Time, error) {
	if !config.ValidAgentName(name) {
		return "", time.Time{}, fmt.Errorf("agent name %q: use 1-64 letters, digits, '.', '_' or '-'", name)
	}
	if ttl == 0 {
		ttl = c.Config.Agents.EnrollLifetime()
	}
	if ttl < 0 || ttl > 7*24*time.Hour {
		return "", time.Time{}, fmt.Errorf("--ttl %s: must be between 1s and 7 days", ttl)
	}
	ca, err := tunnel.LoadOrCreateCA(agentCADir(c.Config))
	if err != nil {
		return "", time.Time{}, err
	}
	now := time.Now()
	tok, rec := tunnel.NewEnrollToken(name, ca, now, ttl)
	if err := c.Store.PutEnrollToken(ctx, rec); err != nil {
		return "", time.Time{}, err
	}
	ev := audit.Event{Kind: kindAgentEnrollToken, Details: map[string]string{
		"agent": name, "token_id": rec.ID, "expires_at": rec.ExpiresAt.UTC().Format(time.RFC3339), "by": actorOf(ctx)}}
	if _, err := c.Audit.Append(ctx, ev); err != nil {
		return "", time.Time{}, fmt.Errorf("audit: %w", err)
	}
	return tok, rec.ExpiresAt, nil
}

// RevokeAgent cuts an agent off: its tunnels on every gateway node close
// within a second, and its certificate and unused tokens stop working.
func (c *Core) RevokeAgent(ctx context.Context, name, reason string) error {
	if err := c.Store.RevokeAgent(ctx, name, time.Now()); err != nil {
		return err
	}
	ev := audit.Event{Kind: kindAgentRevoke, Reason: reason, Details: map[string]string{"agent": name, "by": actorOf(ctx)}}
	if _, err := c.Audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// ListAgents lists enrolled agents.
func (c *Core) ListAgents(ctx context.Context) ([]store.Agent, error) {
	return c.Store.ListAgents(ctx)
}

// RunAgent runs a network-resident agent from its config: it enrolls on
// first start, then keeps one tunnel to each gateway node until ctx ends
// or the gateway refuses it for good.
func RunAgent(ctx context.Context, cfg *config.AgentConfig, logger *slog.Logger, version string) error {
	for _, name := range cfg.LiteralSecrets() {
		logger.Warn("connection password is written in the agent config; prefer env:NAME or file:PATH", "connection", name)
	}
	id := tunnel.Identity{Dir: cfg.DataDir}
	if err := ensureEnrolled(ctx, cfg, id, logger); err != nil {
		return err
	}
	local := agent.New(cfg.Connections, logger)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		fatal error
	)
	for i, addr := range cfg.GatewayAddrs() {
		c := &tunnel.Client{
			Name: cfg.Name, Version: version, Dialer: local, Connections: connInfos(local.Served()),
			Connect: tunnel.RemoteConnect(addr, id), Logger: logger.With("gateway", addr),
		}
		if i == 0 {
			c.Identity = &id // one tunnel renews the shared certificate
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				once.Do(func() { fatal = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	return fatal
}

// ensureEnrolled exchanges the enrollment token for a certificate when the
// agent has none (or only an expired one), retrying while the gateway is
// unreachable.
func ensureEnrolled(ctx context.Context, cfg *config.AgentConfig, id tunnel.Identity, logger *slog.Logger) error {
	leaf, err := id.Leaf()
	switch {
	case err == nil && time.Now().Before(leaf.NotAfter):
		return nil
	case err != nil && !errors.Is(err, tunnel.ErrNotEnrolled):
		return err
	}
	if cfg.EnrollToken == "" {
		return fmt.Errorf("agent %s is not enrolled (or its certificate expired): run `gatehouse agents enroll --name %s` on the gateway and give the token in enroll_token", cfg.Name, cfg.Name)
	}
	if cfg.EnrollToken.IsLiteral() {
		logger.Warn("enroll_token is written in the agent config; prefer env:NAME")
	}
	tok, err := cfg.EnrollToken.Resolve()
	if err != nil {
		return fmt.Errorf("enroll_token: %w", err)
	}
	addr := cfg.GatewayAddrs()[0]
	delay := 500 * time.Millisecond
	for {
		err := tunnel.Enroll(ctx, addr, cfg.Name, tok, id)
		if err == nil {
			logger.Info("agent enrolled", "agent", cfg.Name, "gateway", addr, "data_dir", cfg.DataDir)
			return nil
		}
		var ee *tunnel.EnrollError
		if errors.As(err, &ee) {
			return err
		}
		logger.Warn("enrollment failed; retrying", "gateway", addr, "in", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(2*delay, 30*time.Second)
	}
}
