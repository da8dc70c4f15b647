package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// GatehouseConnection is the connection name of requests about Gatehouse
// itself rather than a target, such as the MCP tools list_connections and
// approval_status (Tool::"gatehouse/list_connections"). Every valid token
// may name it; policy decides each request on it. The config refuses a
// connection of this name.
const GatehouseConnection = "gatehouse"

// newSession opens a session for verified claims on connection.
// gen is the revocation generation read before the token was verified.
func newSession(c identity.Claims, gen uint64, connection, protocol, source string) *Session {
	s := &Session{ID: newSessionID(), Claims: c, Connection: connection, Protocol: protocol, Source: source, cache: map[any]cachedVerdict{}}
	s.revGen.Store(gen)
	s.uid = c.PrincipalUID()
	s.principal = policy.Principal{Type: policy.Agent, ID: c.Subject, OnBehalfOf: c.Actor, Groups: c.Groups,
		// The token's connection patterns are resolved here: policy sees
		// the concrete connection the session is on.
		Connections: []string{connection}}
	if c.Kind == identity.KindUser {
		s.principal.Type = policy.User
	}
	for _, sc := range c.Scopes {
		s.principal.Scopes = append(s.principal.Scopes, string(sc))
	}
	return s
}

// AuthenticateCall verifies a token presented for one call of a
// request/response protocol (an MCP tool call) on connection, and opens a
// session to decide it with Authorize. Unlike Authenticate it decides no
// connect: the call is decided as its own action, and whatever the call
// then opens on the connection (the SQL session of a query tool) decides
// connect itself. connection may be GatehouseConnection. Failures are
// audited and wrap ErrAuth, as Authenticate's do.
func (p *Pipeline) AuthenticateCall(ctx context.Context, token, connection, protocol, source string) (*Session, error) {
	gen := p.Identity.RevocationGeneration()
	c, err := p.Identity.Verify(ctx, token)
	if err != nil {
		p.countToken(err)
		p.auditAuthFailure(ctx, connection, protocol, source, "", err.Error())
		return nil, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	if connection != GatehouseConnection && !c.AllowsConnection(connection) {
		p.countToken(errors.New("connection"))
		reason := fmt.Sprintf("token is not scoped to connection %q", connection)
		p.auditAuthFailure(ctx, connection, protocol, source, c.PrincipalUID(), reason)
		return nil, fmt.Errorf("%w: %s", ErrAuth, reason)
	}
	p.countToken(nil)
	s := newSession(c, gen, connection, protocol, source)
	if connection != GatehouseConnection {
		conn := policy.Resource{Type: policy.Connection, ID: connection, Connection: connection}
		s.ClearText = p.Policy.Decide(policy.Request{Principal: s.principal, Action: "clear_text", Resource: conn}).Allow
	}
	return s, nil
}
