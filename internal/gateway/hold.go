package gateway

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
)

// Hold says who must approve a request before it runs.
type Hold struct {
	Policy   string
	Group    string
	Required int
	// Window lets an approval be reused until it ends, by the same
	// principal acting for the same human, for the same exact operation;
	// zero means single use.
	Window time.Duration
}

// holdFor reads the approval annotations of an allow's determining permits:
// a request is held only when every permit that allows it asks for an
// approval (a permit without one is a path that needs none). @approval
// names the reviewer group; @approvals the number required (default 1);
// @approval_window a reuse window such as "1h".
func holdFor(v Verdict) *Hold {
	if len(v.Annotations) == 0 {
		return nil
	}
	var h *Hold
	for i, ann := range v.Annotations {
		group, ok := ann["approval"]
		if !ok {
			return nil
		}
		if h == nil {
			h = &Hold{Policy: v.Policies[i], Group: group, Required: 1}
			if n, err := strconv.Atoi(ann["approvals"]); err == nil && n > 0 {
				h.Required = n
			}
			if d, err := time.ParseDuration(ann["approval_window"]); err == nil && d > 0 {
				h.Window = d
			}
		}
	}
	return h
}

// withGrants puts the principal's active just-in-time grants on this
// connection into the request context, and returns the grants version the
// cached verdicts are keyed by.
func (p *Pipeline) withGrants(ctx context.Context, s *Session, r *Request) uint64 {
	if p.Approvals == nil {
		return 0
	}
	grants, version := p.Approvals.ActiveGrants(ctx, s.uid, s.Connection)
	if len(grants) > 0 {
		if r.Context == nil {
			r.Context = map[string]any{}
		}
		r.Context["grants"] = grants
	}
	return version
}

// Reviewer describes the session's principal as an approval reviewer (or
// requester): its kind, name, human, groups, scopes and connections.
func (s *Session) Reviewer() approval.Reviewer {
	r := approval.Reviewer{ID: s.Claims.Subject, Type: s.principal.Type, OnBehalfOf: s.Claims.Actor,
		Groups: s.Claims.Groups, Connections: s.Claims.Connections}
	for _, sc := range s.Claims.Scopes {
		r.Scopes = append(r.Scopes, string(sc))
	}
	return r
}

// Outcome is how a hold ended.
type Outcome struct {
	Approved bool
	Approval *approval.Approval
	// Reason is the client's message when not approved.
	Reason string
}

// AwaitApproval holds an operation until a human decides. The engine
// describes what runs (database, action, exact text, parameters); the
// session supplies who asks and where (principal, human, connection), so
// an engine cannot bind an approval to less than the whole operation. An
// approval already granted for the same operation (a retry, or a reuse
// window) is used at once; otherwise a request is opened, onPending is
// called with it (engines tell the client the id), and the call waits up
// to the approval timeout. An approval is used only if the session's token
// still holds then (Check). summary is the operation without literal
// values, for the audit log.
func (p *Pipeline) AwaitApproval(ctx context.Context, s *Session, h *Hold, op approval.Operation, summary string, onPending func(*approval.Approval)) (Outcome, error) {
	if p.Approvals == nil {
		return Outcome{Reason: "approvals are not configured"}, nil
	}
	op.Principal, op.OnBehalfOf, op.Connection = s.uid, s.Claims.Actor, s.Connection
	if a, err := p.Approvals.FindApproved(ctx, op); err != nil {
		return Outcome{}, err
	} else if a != nil {
		if err := p.Check(s); err != nil {
			return Outcome{Approval: a, Reason: EndMessage(err)}, nil
		}
		if err := p.Approvals.Use(ctx, a); err == nil {
			return Outcome{Approved: true, Approval: a}, nil
		}
	}
	a, err := p.Approvals.RequestOperation(ctx, approval.HoldSpec{
		Operation: op, Subject: s.Claims.Subject, Summary: summary,
		Policy: h.Policy, Group: h.Group, Required: h.Required, Window: h.Window,
	})
	if err != nil {
		return Outcome{}, err
	}
	if onPending != nil {
		onPending(a)
	}
	decided, err := p.Approvals.Wait(ctx, a.ID)
	if err != nil {
		if ctx.Err() != nil {
			return Outcome{Approval: a, Reason: fmt.Sprintf("approval %s: stopped waiting (%v); it stays pending, retry the statement once it is approved", a.ID, ctx.Err())}, nil
		}
		return Outcome{}, err
	}
	a = decided
	switch a.Status {
	case approval.Approved:
		// The wait may have outlived the token: an approval is no use to
		// a session whose token was revoked or expired meanwhile, and is
		// left unused.
		if err := p.Check(s); err != nil {
			return Outcome{Approval: a, Reason: EndMessage(err)}, nil
		}
		if err := p.Approvals.Use(ctx, a); err != nil {
			return Outcome{Approval: a, Reason: fmt.Sprintf("approval %s could not be used: %v", a.ID, err)}, nil
		}
		return Outcome{Approved: true, Approval: a}, nil
	case approval.Denied:
		last := a.Reviews[len(a.Reviews)-1]
		reason := fmt.Sprintf("approval %s denied by %s", a.ID, last.By)
		if last.Reason != "" {
			reason += ": " + last.Reason
		}
		return Outcome{Approval: a, Reason: reason}, nil
	default:
		return Outcome{Approval: a, Reason: fmt.Sprintf("approval %s %s: nobody approved it within %s", a.ID, a.Status, p.Approvals.Timeout())}, nil
	}
}
