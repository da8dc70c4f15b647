package approval

import (
	"context"
	"strings"
	"time"
)

// grantsRefresh bounds how stale the in-memory grant list may be when a
// grant is approved by another process.
const grantsRefresh = time.Second

// ActiveGrants returns the roles granted to principal on connection now,
// and the grants version: it changes whenever the set of active grants may
// have changed, so cached decisions that saw the old set are dropped. The
// list is cached and reread at most every second; a grant that expires
// stops applying at its expiry whatever the cache says.
func (s *Service) ActiveGrants(ctx context.Context, principal, connection string) (roles []string, version uint64) {
	s.refreshGrants(ctx)
	now := s.o.Now()
	s.grantsMu.Lock()
	defer s.grantsMu.Unlock()
	for _, g := range s.grants {
		if g.Principal == principal && g.Connection == connection && now.Before(g.GrantExpires()) {
			roles = append(roles, g.Role)
		}
	}
	return roles, s.grantsVer
}

func (s *Service) invalidateGrants() {
	s.grantsMu.Lock()
	s.grantsAt = time.Time{}
	s.grantsMu.Unlock()
}

func (s *Service) refreshGrants(ctx context.Context) {
	now := s.o.Now()
	s.grantsMu.Lock()
	// A grant that expires leaves the active set at once: drop it and move
	// the version, without waiting for the store.
	live := s.grants[:0:0]
	for _, g := range s.grants {
		if now.Before(g.GrantExpires()) {
			live = append(live, g)
		}
	}
	if len(live) != len(s.grants) {
		s.grants = live
		s.grantsVer++
	}
	fresh := now.Sub(s.grantsAt) < grantsRefresh
	s.grantsMu.Unlock()
	// One caller rereads the store; the others meanwhile use the list they
	// have, so a busy gateway does not send every statement to the store
	// when the list turns stale.
	if fresh || !s.refreshing.TryLock() {
		return
	}
	defer s.refreshing.Unlock()
	all, err := s.List(ctx, Approved)
	if err != nil {
		s.o.Logger.Warn("approval: grant refresh failed", "err", err)
		return
	}
	var grants []*Approval
	var sig strings.Builder
	for _, a := range all {
		if a.Kind == KindGrant && now.Before(a.GrantExpires()) {
			grants = append(grants, a)
			sig.WriteString(a.ID)
			sig.WriteByte(',')
		}
	}
	s.grantsMu.Lock()
	defer s.grantsMu.Unlock()
	s.grants, s.grantsAt = grants, now
	if sig.String() != s.grantsSeen {
		s.grantsSeen = sig.String()
		s.grantsVer++
	}
}
