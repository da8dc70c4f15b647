package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// ErrAuth is wrapped by every authentication failure.
var ErrAuth = errors.New("authentication failed")

// ErrForbidden is wrapped when a valid token's principal may not connect.
var ErrForbidden = errors.New("not permitted")

// ErrAuditUnavailable is returned when a decision cannot be logged; the
// request must not proceed. AuditRefusal says why, for the client.
var ErrAuditUnavailable = errors.New("audit log unavailable")

// AuditRefusal says, in words fit for the client, why the audit log did
// not take a decision's event. It names the cause but never carries the
// store's own error, which stays in the gateway log (the writer logs each
// failed commit). A full queue on a working store is not a cause: it slows
// the request down instead (audit.Log.Enqueue).
func AuditRefusal(err error) string {
	switch {
	case errors.Is(err, audit.ErrStoreFailing):
		return "the audit log's store is failing, and nothing runs unlogged (the gateway log has the store's error)"
	case errors.Is(err, audit.ErrClosed):
		return "the gateway is shutting down"
	case errors.Is(err, context.DeadlineExceeded):
		return "the audit log did not make the event durable in time (audit.durability: sync)"
	case errors.Is(err, context.Canceled):
		return "the request ended while the audit log was taking its event"
	}
	return "the audit log is unavailable"
}

// Pipeline holds what every engine needs to govern a request.
type Pipeline struct {
	Identity *identity.Service
	Policy   *policy.Engine
	Audit    *audit.Log
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	// SyncAudit makes each decision wait until its audit event is durable
	// (audit.durability: sync); otherwise it waits only until the event is
	// queued in order.
	SyncAudit bool
	// AuditWait bounds how long a sync decision waits for durability before
	// failing closed (default 5s).
	AuditWait time.Duration
	// Approvals holds statements that policy allows only after a human
	// approves them, and supplies just-in-time grants; nil disables both
	// (an approval-gated permit then denies).
	Approvals *approval.Service
	// SessionLimits cap the sessions Authenticate opens (limits.go).
	SessionLimits SessionLimits

	slots sessionSlots
}

// Session is one authenticated client session on one connection.
type Session struct {
	ID         string
	Claims     identity.Claims
	Connection string
	Protocol   string // postgres, mcp, ...
	Source     string // client address
	// ClearText: policy permits this principal to see unmasked values on
	// this connection (action clear_text).
	ClearText bool

	principal policy.Principal
	uid       string
	// release frees the session's slot (Close); nil when it holds none.
	release func()

	// revGen is the identity revocation generation the token was last
	// checked at; ended, once set, is why the token no longer holds
	// (recheck.go).
	revGen atomic.Uint64
	ended  atomic.Pointer[error]

	mu    sync.Mutex
	set   *policy.Set // the policy set the cached verdicts came from
	cache map[any]cachedVerdict
}

type cachedVerdict struct {
	v      Verdict
	gen    uint64
	grants uint64
}

// PrincipalUID is the Cedar UID of the session's principal.
func (s *Session) PrincipalUID() string { return s.uid }

func newSessionID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Authenticate verifies a token presented for a connection and opens a
// session. Every failure is audited and wraps ErrAuth with a reason safe to
// show the client (it never contains the token). The session holds a slot
// under SessionLimits until its Close; over a cap the error wraps
// ErrTooManySessions.
func (p *Pipeline) Authenticate(ctx context.Context, token, connection, protocol, source string) (*Session, error) {
	gen := p.Identity.RevocationGeneration() // before Verify: see recheck.go
	c, err := p.Identity.Verify(ctx, token)
	if err != nil {
		p.countToken(err)
		p.auditAuthFailure(ctx, connection, protocol, source, "", err.Error())
		return nil, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	if !c.AllowsConnection(connection) {
		p.countToken(errors.New("connection"))
		reason := fmt.Sprintf("token is not scoped to connection %q", connection)
		p.auditAuthFailure(ctx, connection, protocol, source, c.PrincipalUID(), reason)
		return nil, fmt.Errorf("%w: %s", ErrAuth, reason)
	}
	p.countToken(nil)
	s := newSession(c, gen, connection, protocol, source)
	release, limit, err := p.reserve(s.uid, protocol, connection)
	if err != nil {
		p.refuseSession(ctx, s, limit, err)
		return nil, err
	}
	s.release = release
	// Every way out but success, a panic included, gives the slot back.
	opened := false
	defer func() {
		if !opened {
			release()
		}
	}()
	conn := policy.Resource{Type: policy.Connection, ID: connection, Connection: connection}
	connReq := Request{}
	p.withGrants(ctx, s, &connReq)
	d := p.Policy.Decide(policy.Request{Principal: s.principal, Action: "connect", Resource: conn, Context: connReq.Context})
	ev := audit.Event{Kind: audit.KindDecision, Principal: s.uid, OnBehalfOf: c.Actor, TokenID: c.ID, Session: s.ID,
		Source: source, Connection: connection, Action: "connect", Resource: connection, Reason: d.Reason(),
		Details: map[string]string{"protocol": protocol}}
	for _, pi := range d.Policies {
		ev.Policies = append(ev.Policies, pi.ID)
	}
	ev.Decision = "deny"
	if d.Allow {
		ev.Decision = "allow"
	}
	if _, err := p.Audit.Append(ctx, ev); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	if !d.Allow {
		return nil, fmt.Errorf("%w: %s", ErrForbidden, d.Reason())
	}
	s.ClearText = p.Policy.Decide(policy.Request{Principal: s.principal, Action: "clear_text", Resource: conn}).Allow
	opened = true
	return s, nil
}

func (p *Pipeline) countToken(err error) {
	if p.Metrics == nil {
		return
	}
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, identity.ErrExpired):
		result = "expired"
	case errors.Is(err, identity.ErrRevoked):
		result = "revoked"
	default:
		result = "invalid"
	}
	p.Metrics.TokenChecks.WithLabelValues(result).Inc()
}

func (p *Pipeline) auditAuthFailure(ctx context.Context, connection, protocol, source, principal, reason string) {
	_, err := p.Audit.Enqueue(ctx, audit.Event{Kind: audit.KindAuthFailure, Principal: principal, Connection: connection,
		Source: source, Action: "connect", Decision: "deny", Reason: reason, Details: map[string]string{"protocol": protocol}})
	if err != nil {
		p.Logger.Error("audit append failed", "kind", audit.KindAuthFailure, "err", err)
	}
}

// Access is one thing a request does to one resource.
type Access struct {
	Action       string // e.g. sql:select
	ResourceType string // policy.Table, policy.Connection, ...
	ResourceID   string // e.g. pg/public.users; the connection name for Connection
}

// Request is what an engine asks the pipeline to decide.
type Request struct {
	Accesses []Access
	// Context is the policy context shared by all accesses (class, tables,
	// columns, flags for SQL).
	Context map[string]any
	// CacheKey, when not nil, lets the session reuse the verdict for an
	// identical request (same analysis) under the same policy set. Generation
	// invalidates it when the key's meaning changes (e.g. the SQL cache).
	CacheKey   any
	Generation uint64
	// Audit describes the request in its audit event.
	Audit audit.Event
	// QuietAllow leaves an allowed, unheld decision out of the audit log:
	// for a step that runs nothing itself and whose every execution is
	// decided and audited on its own (a PostgreSQL Parse, whose Binds
	// are). Denials and holds are always audited.
	QuietAllow bool
}

// Verdict is the pipeline's answer.
type Verdict struct {
	Allow    bool
	Reason   string   // one line for the client, naming the determining policy
	Policies []string // determining policy ids
	// Annotations of the determining policies (e.g. @approval).
	Annotations []map[string]string
	EventID     string
	// Hold, when set on an allow, means the request may run only after a
	// human approves it (every determining permit carries @approval).
	Hold *Hold
}

// Authorize decides a request: first the session's token must still hold
// (Check: not expired, not revoked; an error wrapping ErrAuth otherwise,
// after which the engine ends the session), then one policy decision per
// access, all of which must allow; then the decision is audited before
// Authorize returns, so nothing runs unlogged. It fails closed (returns an
// error wrapping ErrAuditUnavailable) when the audit log cannot take the
// event.
func (p *Pipeline) Authorize(ctx context.Context, s *Session, r Request) (Verdict, error) {
	if err := p.Check(s); err != nil {
		return Verdict{}, err
	}
	grantsVer := p.withGrants(ctx, s, &r)
	v, cached := s.lookup(p.Policy.Set(), r, grantsVer)
	if !cached {
		v = p.decide(s, r)
		s.store(r, v, grantsVer)
	}
	if r.QuietAllow && v.Allow && v.Hold == nil {
		return v, nil
	}
	ev := r.Audit
	ev.Kind = audit.KindDecision
	ev.Principal, ev.OnBehalfOf, ev.TokenID = s.uid, s.Claims.Actor, s.Claims.ID
	ev.Session, ev.Source, ev.Connection = s.ID, s.Source, s.Connection
	ev.Decision = "deny"
	if v.Allow {
		ev.Decision = "allow"
	}
	ev.Policies, ev.Reason = v.Policies, v.Reason
	if ev.Action == "" && len(r.Accesses) > 0 {
		ev.Action = r.Accesses[0].Action
	}
	if ev.Resource == "" && len(r.Accesses) > 0 {
		ids := make([]string, 0, len(r.Accesses))
		for _, a := range r.Accesses {
			ids = append(ids, a.ResourceID)
		}
		ev.Resource = strings.Join(ids, ",")
	}
	pending, err := p.Audit.Enqueue(ctx, ev)
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	if p.SyncAudit {
		wait := p.AuditWait
		if wait <= 0 {
			wait = 5 * time.Second
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		ev, err = pending.Wait(wctx)
		cancel()
		if err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
		}
	}
	v.EventID = ev.ID
	if p.Metrics != nil {
		result := "deny"
		if v.Allow {
			result = "allow"
		}
		p.Metrics.Decisions.WithLabelValues(ev.Action, result).Inc()
	}
	return v, nil
}

func (p *Pipeline) decide(s *Session, r Request) Verdict {
	if len(r.Accesses) == 0 {
		return Verdict{Reason: "denied: the request touches nothing Gatehouse can name"}
	}
	var allow Verdict
	allow.Allow = true
	seen := map[string]bool{}
	for _, a := range r.Accesses {
		d := p.Policy.Decide(policy.Request{
			Principal: s.principal, Action: a.Action,
			Resource: policy.Resource{Type: a.ResourceType, ID: a.ResourceID, Connection: s.Connection},
			Context:  r.Context,
		})
		if !d.Allow {
			v := Verdict{Reason: d.Reason()}
			if len(d.Policies) == 0 {
				v.Reason = fmt.Sprintf("denied: no policy permits %s on %s", a.Action, a.ResourceID)
				if len(d.Errors) > 0 && d.Errors[0].Policy.ID == "" {
					v.Reason = d.Reason()
				}
			}
			for _, pi := range d.Policies {
				v.Policies = append(v.Policies, pi.ID)
				v.Annotations = append(v.Annotations, pi.Annotations)
			}
			return v
		}
		for _, pi := range d.Policies {
			if !seen[pi.ID] {
				seen[pi.ID] = true
				allow.Policies = append(allow.Policies, pi.ID)
				allow.Annotations = append(allow.Annotations, pi.Annotations)
			}
		}
	}
	allow.Reason = "allowed by policy " + strings.Join(quoteAll(allow.Policies), ", ")
	allow.Hold = holdFor(allow)
	if allow.Hold != nil && p.Approvals == nil {
		return Verdict{Reason: fmt.Sprintf("denied: policy %q requires an approval, and approvals are not configured", allow.Hold.Policy), Policies: allow.Policies}
	}
	return allow
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func (s *Session) lookup(set *policy.Set, r Request, grants uint64) (Verdict, bool) {
	if r.CacheKey == nil {
		return Verdict{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set != set {
		// Policies changed: every cached verdict is stale.
		clear(s.cache)
		s.set = set
		return Verdict{}, false
	}
	c, ok := s.cache[r.CacheKey]
	if !ok || c.gen != r.Generation || c.grants != grants {
		return Verdict{}, false
	}
	return c.v, true
}

// maxCachedVerdicts bounds a session's verdict cache.
const maxCachedVerdicts = 4096

func (s *Session) store(r Request, v Verdict, grants uint64) {
	if r.CacheKey == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= maxCachedVerdicts {
		clear(s.cache)
	}
	s.cache[r.CacheKey] = cachedVerdict{v: v, gen: r.Generation, grants: grants}
}
