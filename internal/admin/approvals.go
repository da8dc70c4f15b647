package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
)

// Caller is who performs an approval operation: an API token's principal,
// or an administrator using the CLI on the gateway host (Admin).
type Caller struct {
	ID         string // the reviewer id: a user's name, an agent's name, or cli:USER@HOST
	Principal  string // Cedar UID, when the caller has a token
	OnBehalfOf string
	Groups     []string
	Admin      bool
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

func (l *Local) ListApprovals(ctx context.Context, status string) ([]*approval.Approval, error) {
	svc, err := l.approvals()
	if err != nil {
		return nil, err
	}
	return svc.List(ctx, status)
}

func (l *Local) GetApproval(ctx context.Context, id string) (*approval.Approval, error) {
	svc, err := l.approvals()
	if err != nil {
		return nil, err
	}
	return svc.Get(ctx, id)
}

func (l *Local) reviewer(ctx context.Context) (approval.Reviewer, error) {
	c, ok := CallerFrom(ctx)
	if !ok || c.ID == "" {
		return approval.Reviewer{}, fmt.Errorf("%w: no reviewer identity", ErrDenied)
	}
	return approval.Reviewer{ID: c.ID, Groups: c.Groups, Admin: c.Admin}, nil
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
	case errors.Is(err, approval.ErrSelfApproval), errors.Is(err, approval.ErrNotReviewer):
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
