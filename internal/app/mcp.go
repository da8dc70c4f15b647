package app

import (
	"net/http"

	mcpengine "github.com/gatehouse-dev/gatehouse/internal/engine/mcp"
)

// newMCPEngine builds the MCP engine, whose SQL tools reach the PostgreSQL
// engine in process (its ServeInternal), so a tool's statements take the
// same path as a wire client's. Nil when mcp.disabled.
func newMCPEngine(g *Gateway) *mcpengine.Engine {
	cfg := g.Config
	if cfg.MCP.Disabled {
		return nil
	}
	var issuers []string
	for _, o := range cfg.Identity.OIDC {
		if o.AcceptDirect {
			issuers = append(issuers, o.Issuer)
		}
	}
	return mcpengine.New(mcpengine.Options{
		Pipeline: g.Pipeline, Masker: g.Masker, ServePostgres: g.Postgres.ServeInternal,
		Connections: func() []mcpengine.Connection {
			out := make([]mcpengine.Connection, 0, len(cfg.Connections))
			for _, c := range cfg.Connections {
				out = append(out, mcpengine.Connection{Name: c.Name, Type: c.Type, Database: c.Database})
			}
			return out
		},
		PublicURL: cfg.MCP.PublicURL, AuthorizationServers: issuers,
		MaxRows: cfg.MCP.MaxRows, MaxRowsLimit: cfg.MCP.MaxRowsLimit,
		ApprovalWait: cfg.MCP.ApprovalWait, ApprovalWaitLimit: cfg.MCP.ApprovalWaitLimit,
		Hold: cfg.MCP.Hold, ResultTTL: cfg.MCP.ResultTTL,
		Logger: g.Logger,
	})
}

// mcpRoutes are the routes MCP serves on the API listener.
func (g *Gateway) mcpRoutes() map[string]http.Handler {
	if g.MCP == nil {
		return nil
	}
	h := g.MCP.Handler()
	routes := map[string]http.Handler{}
	for _, p := range g.MCP.Routes() {
		routes[p] = h
	}
	return routes
}

// closeMCP ends MCP sessions when the API server shuts down, so their open
// event streams do not hold the shutdown until it times out.
func (g *Gateway) closeMCP() {
	if g.MCP != nil {
		g.MCP.Close()
	}
}
