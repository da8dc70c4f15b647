package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// The OAuth metadata documents: RFC 9728 protected resource metadata (the
// MCP authorization spec's discovery entry point, named by the
// WWW-Authenticate header of every 401) and RFC 8414 authorization server
// metadata for the gateway's own token endpoint.
const (
	resourceMetadataPath   = "/.well-known/oauth-protected-resource"
	authServerMetadataPath = "/.well-known/oauth-authorization-server"
)

// tokenExtra keys in auth.TokenInfo.Extra: what a tool handler needs of the
// HTTP request that carried the call.
const (
	extraToken  = "gatehouse.token"  // the raw bearer token
	extraSource = "gatehouse.source" // the client's address
)

// requireToken verifies the bearer token of every request to /mcp (every
// POST, GET and DELETE of the Streamable HTTP transport, so an expired or
// revoked token stops working at once). A refusal is a 401 whose
// WWW-Authenticate names the resource metadata (MCP authorization spec,
// RFC 9728 §5.1), and is audited.
func (e *Engine) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mw := auth.RequireBearerToken(e.verifyToken, &auth.RequireBearerTokenOptions{
			ResourceMetadataURL: e.baseURL(r) + resourceMetadataPath + "/mcp",
		})
		mw(next).ServeHTTP(w, r)
	})
}

// verifyToken checks a token with the identity service. The TokenInfo's
// UserID binds an MCP session to the principal that opened it: the SDK
// refuses a request for the session carrying another principal's token.
func (e *Engine) verifyToken(ctx context.Context, token string, r *http.Request) (*auth.TokenInfo, error) {
	c, err := e.opts.Pipeline.Identity.Verify(ctx, token)
	if err != nil {
		e.auditAuthFailure(r, "", err.Error())
		return nil, fmt.Errorf("%w: %v", auth.ErrInvalidToken, err)
	}
	scopes := make([]string, len(c.Scopes))
	for i, s := range c.Scopes {
		scopes[i] = string(s)
	}
	return &auth.TokenInfo{
		Scopes:     scopes,
		Expiration: c.ExpiresAt,
		UserID:     c.PrincipalUID() + " for " + c.Actor,
		Extra:      map[string]any{extraToken: token, extraSource: r.RemoteAddr},
	}, nil
}

func (e *Engine) auditAuthFailure(r *http.Request, principal, reason string) {
	_, err := e.opts.Pipeline.Audit.Enqueue(r.Context(), audit.Event{Kind: audit.KindAuthFailure, Principal: principal, Source: r.RemoteAddr,
		Action: "mcp:" + r.Method, Decision: "deny", Reason: reason, Details: map[string]string{"protocol": "mcp"}})
	if err != nil {
		e.opts.Logger.Error("audit append failed", "kind", audit.KindAuthFailure, "err", err)
	}
}

// baseURL is the gateway's API URL as the client reached it.
func (e *Engine) baseURL(r *http.Request) string {
	if e.opts.PublicURL != "" {
		return strings.TrimSuffix(e.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// serveResourceMetadata serves RFC 9728 metadata for /mcp. The gateway is
// its own authorization server (it issues the tokens, and exchanges
// workload and OIDC tokens for them at /v1/token); OIDC issuers whose
// tokens it accepts directly are listed too.
func (e *Engine) serveResourceMetadata(w http.ResponseWriter, r *http.Request) {
	base := e.baseURL(r)
	meta := &oauthex.ProtectedResourceMetadata{
		Resource:               base + "/mcp",
		AuthorizationServers:   append([]string{base}, e.opts.AuthorizationServers...),
		BearerMethodsSupported: []string{"header"},
		ScopesSupported:        []string{string(identity.ScopeRead), string(identity.ScopeWrite), string(identity.ScopeDDL), string(identity.ScopeAdmin)},
		ResourceName:           "Gatehouse MCP",
		ResourceDocumentation:  "https://github.com/gatehouse-dev/gatehouse/blob/main/docs/mcp.md",
	}
	auth.ProtectedResourceMetadataHandler(meta).ServeHTTP(w, r)
}

// authServerMetadata is RFC 8414 metadata for the gateway's token endpoint.
// Gatehouse has no authorization endpoint: tokens come from `gatehouse
// token issue`, the admin API, or RFC 8693 exchange of an OIDC or workload
// token, so it lists no response types and only the token-exchange grant.
type authServerMetadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ServiceDocumentation              string   `json:"service_documentation"`
}

func (e *Engine) serveAuthServerMetadata(w http.ResponseWriter, r *http.Request) {
	base := e.baseURL(r)
	meta := authServerMetadata{
		Issuer:                            base,
		TokenEndpoint:                     base + "/v1/token",
		JWKSURI:                           base + "/.well-known/jwks.json",
		ScopesSupported:                   []string{string(identity.ScopeRead), string(identity.ScopeWrite), string(identity.ScopeDDL), string(identity.ScopeAdmin)},
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               []string{"urn:ietf:params:oauth:grant-type:token-exchange"},
		TokenEndpointAuthMethodsSupported: []string{"none"},
		ServiceDocumentation:              "https://github.com/gatehouse-dev/gatehouse/blob/main/docs/identity.md",
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	json.NewEncoder(w).Encode(meta)
}
