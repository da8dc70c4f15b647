package identity

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// RevocationStore is the part of store.Store identity uses. Several
// processes (gateway nodes, the CLI) share one, which is how a revoke in one
// reaches the others.
type RevocationStore interface {
	// Revoke records a revocation; revoking twice is not an error.
	Revoke(ctx context.Context, r store.Revocation) error
	// Revocations lists revocations that have not yet expired at now.
	Revocations(ctx context.Context, now time.Time) ([]store.Revocation, error)
}

var _ RevocationStore = store.Store(nil)

// revocations is the in-memory set Verify checks: a copy-on-write snapshot
// of a map from jti to the time after which the entry is useless (the token
// has expired). Entries are only added or expired, never removed early,
// since the store has no un-revoke; that lets a refresh merge instead of
// replace, so it can never lose a local revoke that raced it.
//
// Each snapshot carries a generation, bumped whenever the set gains an
// entry, so that open sessions (Recheck) look their jti up only when
// something was revoked since they last looked, and a channel closed when
// a later generation replaces it, so that watchers wake on a revoke
// instead of polling.
type revocations struct {
	cur atomic.Pointer[revSnapshot]
	mu  sync.Mutex // serializes writers
}

type revSnapshot struct {
	set map[string]time.Time
	gen uint64
	// next is closed when a snapshot of a later generation replaces this
	// one; a snapshot that only drops expired entries shares it.
	next chan struct{}
}

func newRevocations() *revocations {
	r := &revocations{}
	r.cur.Store(&revSnapshot{set: map[string]time.Time{}, next: make(chan struct{})})
	return r
}

// revoked reports whether jti is in the set and not yet expired at now.
func (r *revocations) revoked(jti string, now time.Time) bool {
	return r.cur.Load().revoked(jti, now)
}

func (sn *revSnapshot) revoked(jti string, now time.Time) bool {
	exp, ok := sn.set[jti]
	return ok && now.Before(exp)
}

// merge adds rs and drops entries expired at now.
func (r *revocations) merge(rs []store.Revocation, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	changed := false
	for _, exp := range old.set {
		if !now.Before(exp) {
			changed = true
			break
		}
	}
	if !changed {
		for _, x := range rs {
			if exp, ok := old.set[x.JTI]; !ok || exp.Before(x.ExpiresAt) {
				changed = true
				break
			}
		}
	}
	if !changed {
		return // the common refresh: nothing new, no copy
	}
	m := maps.Clone(old.set)
	maps.DeleteFunc(m, func(_ string, exp time.Time) bool { return !now.Before(exp) })
	gained := false
	for _, x := range rs {
		if !now.Before(x.ExpiresAt) {
			continue
		}
		if exp, ok := m[x.JTI]; !ok || exp.Before(x.ExpiresAt) {
			m[x.JTI] = x.ExpiresAt
			gained = gained || !ok
		}
	}
	if !gained {
		// Only expiries dropped or extended: no token became revoked, so
		// sessions need not look again.
		r.cur.Store(&revSnapshot{set: m, gen: old.gen, next: old.next})
		return
	}
	r.cur.Store(&revSnapshot{set: m, gen: old.gen + 1, next: make(chan struct{})})
	close(old.next) // after the store: a woken watcher sees the new set
}

func (r *revocations) len() int { return len(r.cur.Load().set) }

// Revoke makes the token with this jti unusable. It persists through the
// store first, so other processes see it on their next refresh, then takes
// effect here at once. expiresAt is when the token expires anyway; zero
// means "the longest a Gatehouse token can live from now".
func (s *Service) Revoke(ctx context.Context, jti string, expiresAt time.Time, reason string) error {
	if jti == "" {
		return fmt.Errorf("identity revoke: %w: empty jti", ErrInvalidRequest)
	}
	now := s.now()
	if expiresAt.IsZero() {
		expiresAt = now.Add(s.cfg.MaxTTL + s.cfg.ClockSkew)
	}
	// A token is accepted until exp + skew, so the revocation must outlive
	// that too.
	expiresAt = expiresAt.Add(s.cfg.ClockSkew)
	r := store.Revocation{JTI: jti, ExpiresAt: expiresAt, RevokedAt: now, Reason: reason}
	if err := s.store.Revoke(ctx, r); err != nil {
		return fmt.Errorf("identity revoke: store: %w", err)
	}
	s.rev.merge([]store.Revocation{r}, now)
	s.emit(ctx, Event{Kind: EventTokenRevoke, JTI: jti, ExpiresAt: expiresAt, Reason: reason})
	return nil
}

// Refresh reloads revocations from the store now, instead of waiting for
// Run's next tick.
func (s *Service) Refresh(ctx context.Context) error {
	now := s.now()
	rs, err := s.store.Revocations(ctx, now)
	if err != nil {
		return fmt.Errorf("identity refresh revocations: %w", err)
	}
	s.rev.merge(rs, now)
	return nil
}
