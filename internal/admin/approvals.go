package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// Caller is who performs an approval operation: an API token's principal,
// or an administrator using the CLI on the gateway host (Admin).
type Caller struct {
	ID         string // the reviewer id: a user's name, an agent's name, or cli:USER@HOST
	Principal  string // Cedar UID, when the caller has a token: User::"x" is a human
	OnBehalfOf string
	Groups     []string
	// Scopes and Connections (patterns) are the token's, for policy.
	Scopes      []string
	Connections []string
	Admin       bool
}

type callerKey struct{}

// WithCaller records the caller in ctx.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller recorded in ctx.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// AccessRequest is `gatehouse access request`.
type AccessRequest struct {
	Principal  string        `json:"principal,omitempty"` // only for the CLI on the gateway host
	Connection string        `json:"connection"`
	Role       string        `json:"role"`
	For        time.Duration `json:"for_ns"`
	Reason     string        `json:"reason"`
}

// Approvals is the approval part of the admin service.
type Approvals interface {
	ListApprovals(ctx context.Context, status string) ([]*approval.Approval, error)
	GetApproval(ctx context.Context, id string) (*approval.Approval, error)
	Approve(ctx context.Context, id, reason string) (*approval.Approval, error)
	Deny(ctx context.Context, id, reason string) (*approval.Approval, error)
	RequestAccess(ctx context.Context, r AccessRequest) (*approval.Approval, error)
	// ListGrants lists access grants: pending, active and ended.
	ListGrants(ctx context.Context) ([]*approval.Approval, error)
}

func (l *Local) approvals() (*approval.Service, error) {
	if l.Approvals == nil {
		return nil, errors.New("approvals are not configured")
	}
	return l.Approvals, nil
}

// ListApprovals lists the approvals the caller may see (approval:view, or
// approval:decide): its own requests and those it reviews.
func (l *Local) ListApprovals(ctx context.Context, status string) ([]*approval.Approval, error) {
	svc, err := l.approvals()
	if err != nil {
		return nil, err
	}
	r, err := l.reviewer(ctx)
	if err != nil {
		return nil, err
	}
	return svc.ListFor(ctx, r, status)
}

func (l *Local) GetApproval(ctx context.Context, id string) (*approval.Approval, error) {
	svc, err := l.approvals()
	if err != nil {
		return nil, err
	}
	r, err := l.reviewer(ctx)
	if err != nil {
		return nil, err
	}
	a, err := svc.GetFor(ctx, r, id)
	if errors.Is(err, approval.ErrNotVisible) {
		return nil, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	return a, err
}

func (l *Local) reviewer(ctx context.Context) (approval.Reviewer, error) {
	c, ok := CallerFrom(ctx)
	if !ok || c.ID == "" {
		return approval.Reviewer{}, fmt.Errorf("%w: no reviewer identity", ErrDenied)
	}
	typ, _, _ := strings.Cut(c.Principal, "::")
	return approval.Reviewer{ID: c.ID, Type: typ, OnBehalfOf: c.OnBehalfOf, Groups: c.Groups,
		Scopes: c.Scopes, Connections: c.Connections, Admin: c.Admin}, nil
}

// ApprovalAuthorizer decides approval:decide and approval:view with the
// policies that policies returns. The principal is the reviewer as its
// token describes it (an agent's connections resolved against the
// approval's, as the gateway resolves them for a session); the resource is
// Approval::"ID" in the approval's connection; the context names the
// reviewer group the approval asks for and who asked.
func ApprovalAuthorizer(policies func() (*policy.Set, error)) approval.Authorizer {
	return func(_ context.Context, r approval.Reviewer, action string, a *approval.Approval) error {
		set, err := policies()
		if err != nil {
			return fmt.Errorf("policies unavailable: %w", err)
		}
		d := set.Decide(approvalRequest(r, action, a))
		if d.Allow {
			return nil
		}
		if len(d.Policies) == 0 && len(d.Errors) == 0 {
			return fmt.Errorf("no policy permits %s %s on approval %s (its reviewers: humans in group %q)", r.Principal(), action, a.ID, a.Group)
		}
		return fmt.Errorf("%s %s on approval %s: %s", r.Principal(), action, a.ID, d.Reason())
	}
}

func approvalRequest(r approval.Reviewer, action string, a *approval.Approval) policy.Request {
	p := policy.Principal{Type: r.Type, ID: r.ID, Groups: r.Groups}
	if r.Type == policy.Agent {
		p.Scopes, p.OnBehalfOf = r.Scopes, r.OnBehalfOf
		if (identity.Claims{Connections: r.Connections}).AllowsConnection(a.Connection) {
			p.Connections = []string{a.Connection}
		}
	}
	held := ""
	if a.Operation != nil {
		held = a.Operation.Action
	}
	return policy.Request{
		Principal: p,
		Action:    action,
		Resource:  policy.Resource{Type: policy.Approval, ID: a.ID, Connection: a.Connection},
		Context: map[string]any{
			"reviewers":       policy.Ref{Type: policy.Group, ID: a.Group},
			"kind":            a.Kind,
			"held_action":     held,
			"requester":       a.Principal,
			"on_behalf_of":    a.OnBehalfOf,
			"is_requester":    a.RequestedBy(r),
			"is_on_behalf_of": a.RequestedFor(r),
		},
	}
}

func (l *Local) Approve(ctx context.Context, id, reason string) (*approval.Approval, error) {
	return l.review(ctx, id, reason, true)
}

func (l *Local) Deny(ctx context.Context, id, reason string) (*approval.Approval, error) {
	return l.review(ctx, id, reason, false)
}

func (l *Local) review(ctx context.Context, id, reason string, approve bool) (*approval.Approval, error) {
	svc, err := l.approvals()
	if err != nil {
		return nil, err
	}
	r, err := l.reviewer(ctx)
	if err != nil {
		return nil, err
	}
	var a *approval.Approval
	if approve {
		a, err = svc.Approve(ctx, id, r, reason)
	} else {
		a, err = svc.Deny(ctx, id, r, reason)
	}
	switch {
	case errors.Is(err, approval.ErrSelfApproval), errors.Is(err, approval.ErrNotReviewer), errors.Is(err, approval.ErrNotVisible):
		return a, fmt.Errorf("%w: %w", ErrDenied, err)
	case errors.Is(err, approval.ErrNotPending), errors.Is(err, approval.ErrBadRequest):
		return a, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return a, err
}

func (l *Local) RequestAccess(ctx context.Context, r AccessRequest) (*approval.Approval, error) {
	svc, err := l.approvals()
	if err != nil {
		return nil, err
	}
	c, _ := CallerFrom(ctx)
	principal, subject, obo := c.Principal, c.ID, c.OnBehalfOf
	if r.Principal != "" {
		if !c.Admin && r.Principal != c.Principal {
			return nil, fmt.Errorf("%w: a token may request access only for its own principal", ErrDenied)
		}
		principal, subject, obo = r.Principal, principalName(r.Principal), ""
	}
	if principal == "" {
		return nil, fmt.Errorf("%w: say whose access this is (--principal 'Agent::\"name\"')", ErrBadInput)
	}
	a, err := svc.RequestGrant(ctx, approval.GrantSpec{Principal: principal, Subject: subject, OnBehalfOf: obo,
		Connection: r.Connection, Role: r.Role, For: r.For, Reason: r.Reason})
	if errors.Is(err, approval.ErrBadRequest) {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return a, err
}

// principalName reads the id out of a Cedar UID: Agent::"bot" → bot.
func principalName(uid string) string {
	for i := 0; i+2 < len(uid); i++ {
		if uid[i] == ':' && uid[i+1] == ':' && uid[i+2] == '"' && uid[len(uid)-1] == '"' {
			return uid[i+3 : len(uid)-1]
		}
	}
	return uid
}

func (l *Local) ListGrants(ctx context.Context) ([]*approval.Approval, error) {
	all, err := l.ListApprovals(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []*approval.Approval
	for _, a := range all {
		if a.Kind == approval.KindGrant {
			out = append(out, a)
		}
	}
	return out, nil
}

func (r *Remote) ListApprovals(ctx context.Context, status string) ([]*approval.Approval, error) {
	var out []*approval.Approval
	err := r.do(ctx, http.MethodGet, "/v1/approvals?status="+url.QueryEscape(status), nil, &out)
	return out, err
}

func (r *Remote) GetApproval(ctx context.Context, id string) (*approval.Approval, error) {
	var out approval.Approval
	err := r.do(ctx, http.MethodGet, "/v1/approvals/"+url.PathEscape(id), nil, &out)
	return &out, err
}

func (r *Remote) Approve(ctx context.Context, id, reason string) (*approval.Approval, error) {
	var out approval.Approval
	err := r.do(ctx, http.MethodPost, "/v1/approvals/"+url.PathEscape(id)+"/approve", map[string]string{"reason": reason}, &out)
	return &out, err
}

func (r *Remote) Deny(ctx context.Context, id, reason string) (*approval.Approval, error) {
	var out approval.Approval
	err := r.do(ctx, http.MethodPost, "/v1/approvals/"+url.PathEscape(id)+"/deny", map[string]string{"reason": reason}, &out)
	return &out, err
}

func (r *Remote) RequestAccess(ctx context.Context, req AccessRequest) (*approval.Approval, error) {
	var out approval.Approval
	err := r.do(ctx, http.MethodPost, "/v1/access", req, &out)
	return &out, err
}

func (r *Remote) ListGrants(ctx context.Context) ([]*approval.Approval, error) {
	var out []*approval.Approval
	err := r.do(ctx, http.MethodGet, "/v1/access", nil, &out)
	return out, err
}
