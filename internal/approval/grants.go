package approval

import (
	"context"
	"strings"
	"time"
)

// grantsRefresh bounds how stale the in-memory grant list may be when a
// grant is approved by another process.
const grantsRefresh = time.Second

// ActiveGrants returns the roles granted to principal on connection now.
// The list is cached and reread at most every second; a grant that expires
// stops applying at its expiry whatever the cache says.
func (s *Service) ActiveGrants(ctx context.Context, principal, connection string) []string {
	s.refreshGrants(ctx)
	now := s.o.Now()
	s.grantsMu.Lock()
	defer s.grantsMu.Unlock()
	var out []string
	for _, g := range s.grants {
		if g.Principal == principal && g.Connection == connection && now.Before(g.GrantExpires()) {
			out = append(out, g.Role)
		}
	}
	return out
}

// GrantsVersion changes whenever the set of active grants may have
// changed, so cached decisions that saw the old set are dropped.
func (s *Service) GrantsVersion(ctx context.Context) uint64 {
	s.refreshGrants(ctx)
	s.grantsMu.Lock()
	defer s.grantsMu.Unlock()
	return s.grantsVer
}

func (s *Service) invalidateGrants() {
	s.grantsMu.Lock()
	s.grantsAt = time.Time{}
	s.grantsMu.Unlock()
}

func (s *Service) refreshGrants(ctx context.Context) {
	now := s.o.Now()
	s.grantsMu.Lock()
	fresh := now.Sub(s.grantsAt) < grantsRefresh
	// An expiry inside the cached list changes the active set too.
	for _, g := range s.grants {
		if fresh && !now.Before(g.GrantExpires()) {
			fresh = false
		}
	}
	s.grantsMu.Unlock()
	if fresh {
		return
	}
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
