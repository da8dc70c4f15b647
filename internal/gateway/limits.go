package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// SessionLimits cap authenticated sessions (Pipeline.Authenticate), so one
// principal, or all of them together, cannot hold every upstream
// connection, goroutine and descriptor of the gateway. Zero means no cap.
type SessionLimits struct {
	PerPrincipal int
	Total        int
}

// ErrTooManySessions is wrapped when a session would go over a cap. The
// error's text names the limit and is safe to show the client.
var ErrTooManySessions = errors.New("too many sessions")

// The limits a refusal names (audit details, metric labels).
const (
	LimitPerPrincipal = "per_principal"
	LimitTotal        = "total"
)

// sessionSlots counts open sessions, in total and by principal UID.
type sessionSlots struct {
	mu    sync.Mutex
	total int
	by    map[string]int
}

// reserve takes a slot for principal. release frees it and may be called
// more than once; limit names the cap that refused.
func (p *Pipeline) reserve(principal, protocol, connection string) (release func(), limit string, err error) {
	l, sl := p.SessionLimits, &p.slots
	sl.mu.Lock()
	switch {
	case l.PerPrincipal > 0 && sl.by[principal] >= l.PerPrincipal:
		sl.mu.Unlock()
		return nil, LimitPerPrincipal, fmt.Errorf("%w for %s (limit %d per principal)", ErrTooManySessions, principal, l.PerPrincipal)
	case l.Total > 0 && sl.total >= l.Total:
		sl.mu.Unlock()
		return nil, LimitTotal, fmt.Errorf("%w on this gateway (limit %d in total)", ErrTooManySessions, l.Total)
	}
	if sl.by == nil {
		sl.by = map[string]int{}
	}
	sl.total++
	sl.by[principal]++
	sl.mu.Unlock()
	p.gaugeSessions(1, protocol, connection)
	var once sync.Once
	return func() {
		once.Do(func() {
			sl.mu.Lock()
			sl.total--
			if sl.by[principal]--; sl.by[principal] <= 0 {
				delete(sl.by, principal)
			}
			sl.mu.Unlock()
			p.gaugeSessions(-1, protocol, connection)
		})
	}, "", nil
}

// OpenSessions is the number of sessions holding a slot.
func (p *Pipeline) OpenSessions() int {
	p.slots.mu.Lock()
	defer p.slots.mu.Unlock()
	return p.slots.total
}

func (p *Pipeline) gaugeSessions(d float64, protocol, connection string) {
	if p.Metrics != nil {
		p.Metrics.SessionsActive.WithLabelValues(protocol, connection).Add(d)
		p.Metrics.SessionsOpen.Add(d)
	}
}

// refuseSession audits and counts a session refused by a cap: a connect
// decision denied for the limit, so the log shows who was turned away.
func (p *Pipeline) refuseSession(ctx context.Context, s *Session, limit string, err error) {
	if p.Metrics != nil {
		p.Metrics.SessionsRefused.WithLabelValues(limit).Inc()
	}
	ev := audit.Event{Kind: audit.KindDecision, Principal: s.uid, OnBehalfOf: s.Claims.Actor, TokenID: s.Claims.ID, Session: s.ID,
		Source: s.Source, Connection: s.Connection, Action: "connect", Resource: s.Connection, Decision: "deny", Reason: err.Error(),
		Details: map[string]string{"protocol": s.Protocol, "limit": limit}}
	// Queued, not awaited: a principal hammering its cap must not make
	// each refusal wait on a commit.
	if _, aerr := p.Audit.Enqueue(ctx, ev); aerr != nil {
		p.Logger.Error("audit append failed", "kind", ev.Kind, "err", aerr)
	}
}

// Close frees the session's slot under Pipeline.SessionLimits. The engine
// calls it when the session ends; it may be called more than once, and on
// a session from AuthenticateCall (which holds no slot).
func (s *Session) Close() {
	if s.release != nil {
		s.release()
	}
}
