package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Service is the administrator's view of a gateway.
type Service interface {
	IssueToken(ctx context.Context, req identity.IssueRequest) (token string, c identity.Claims, err error)
	// InspectToken verifies a token as the gateway would on a request.
	InspectToken(ctx context.Context, token string) (identity.Claims, error)
	RevokeToken(ctx context.Context, jti, reason string) error
	RotateKeys(ctx context.Context) (kid string, err error)

	VerifyAudit(ctx context.Context) (audit.Report, error)
	// TailAudit returns the last n events, oldest first.
	TailAudit(ctx context.Context, n int) ([]json.RawMessage, error)
	// ExportAudit writes every event as JSON lines.
	ExportAudit(ctx context.Context, w io.Writer) error
	ProveEvent(ctx context.Context, id string) (audit.InclusionProof, error)

	TestPolicy(ctx context.Context, in policy.TestInput) (policy.Decision, error)

	// ListSessions lists recorded sessions, newest first.
	ListSessions(ctx context.Context, limit int) ([]store.RecSession, error)
	// SessionStatements returns one session's recorded statements in order.
	SessionStatements(ctx context.Context, id string) ([]store.RecStatement, error)

	Approvals
}

// ErrBadInput marks errors caused by the caller's input rather than the
// gateway (exit code 2 in the CLI, HTTP 400 in the API).
var ErrBadInput = errors.New("bad input")

// ErrDenied marks a refused operation (HTTP 403).
var ErrDenied = errors.New("denied")

// ClaimsView is the JSON form of verified claims printed by `token inspect`.
type ClaimsView struct {
	Kind        string    `json:"kind"`
	Subject     string    `json:"sub"`
	Actor       string    `json:"act,omitempty"`
	Email       string    `json:"email,omitempty"`
	Groups      []string  `json:"groups,omitempty"`
	Scopes      []string  `json:"scopes"`
	Connections []string  `json:"connections"`
	Issuer      string    `json:"iss"`
	Audience    []string  `json:"aud"`
	ID          string    `json:"jti"`
	KeyID       string    `json:"kid,omitempty"`
	IssuedAt    time.Time `json:"iat"`
	NotBefore   time.Time `json:"nbf"`
	ExpiresAt   time.Time `json:"exp"`
	External    bool      `json:"external,omitempty"`
}

// ViewClaims converts claims for printing or the API.
func ViewClaims(c identity.Claims) ClaimsView {
	v := ClaimsView{
		Kind: string(c.Kind), Subject: c.Subject, Actor: c.Actor, Email: c.Email, Groups: c.Groups,
		Connections: c.Connections, Issuer: c.Issuer, Audience: c.Audience, ID: c.ID, KeyID: c.KeyID,
		IssuedAt: c.IssuedAt, NotBefore: c.NotBefore, ExpiresAt: c.ExpiresAt, External: c.External,
	}
	v.Scopes = make([]string, len(c.Scopes))
	for i, s := range c.Scopes {
		v.Scopes[i] = string(s)
	}
	if v.Connections == nil {
		v.Connections = []string{}
	}
	return v
}

// Claims converts a view back (for the remote client).
func (v ClaimsView) Claims() identity.Claims {
	c := identity.Claims{
		Kind: identity.Kind(v.Kind), Subject: v.Subject, Actor: v.Actor, Email: v.Email, Groups: v.Groups,
		Connections: v.Connections, Issuer: v.Issuer, Audience: v.Audience, ID: v.ID, KeyID: v.KeyID,
		IssuedAt: v.IssuedAt, NotBefore: v.NotBefore, ExpiresAt: v.ExpiresAt, External: v.External,
	}
	for _, s := range v.Scopes {
		c.Scopes = append(c.Scopes, identity.Scope(s))
	}
	return c
}

// DecisionView is the JSON form of a policy decision.
type DecisionView struct {
	Decision string       `json:"decision"`
	Policies []PolicyView `json:"policies"`
	Errors   []string     `json:"errors,omitempty"`
	Reason   string       `json:"reason"`
}

// PolicyView names one determining policy.
type PolicyView struct {
	ID          string            `json:"id"`
	Effect      string            `json:"effect"`
	File        string            `json:"file"`
	Line        int               `json:"line"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ViewDecision converts a decision for printing or the API.
func ViewDecision(d policy.Decision) DecisionView {
	v := DecisionView{Decision: "deny", Reason: d.Reason(), Policies: []PolicyView{}}
	if d.Allow {
		v.Decision = "allow"
	}
	for _, p := range d.Policies {
		v.Policies = append(v.Policies, PolicyView{ID: p.ID, Effect: string(p.Effect), File: p.File, Line: p.Line, Annotations: p.Annotations})
	}
	for _, e := range d.Errors {
		v.Errors = append(v.Errors, e.Error())
	}
	return v
}
