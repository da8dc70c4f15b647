package identity

import (
	"fmt"
	"time"
)

// Recheck is the per-request check of a token that Verify accepted when a
// session opened: it is refused once it expires (exp plus the clock skew)
// or once its jti is revoked. It never verifies a signature: the claims are
// the ones Verify returned. seen is the revocation generation the session
// last checked at (RevocationGeneration before its Verify); the set is
// looked up only when it has gained an entry since, so the usual cost is a
// clock read and an atomic load. It returns the generation to remember.
// Errors wrap ErrExpired or ErrRevoked and are safe to show.
func (s *Service) Recheck(jti string, exp time.Time, seen uint64) (uint64, error) {
	now := s.now()
	if !now.Before(exp.Add(s.cfg.ClockSkew)) {
		return seen, fmt.Errorf("%w at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	sn := s.rev.cur.Load()
	if sn.gen == seen {
		return seen, nil
	}
	if jti != "" && sn.revoked(jti, now) {
		return seen, ErrRevoked
	}
	return sn.gen, nil
}

// RevocationGeneration is the revocation set's generation now. A session
// reads it before its Verify, so a revoke that lands between the two is
// seen by its first Recheck.
func (s *Service) RevocationGeneration() uint64 { return s.rev.cur.Load().gen }

// RevocationChanged returns a channel that is closed when the revocation
// set next gains an entry (a local Revoke, or a Refresh that brings another
// process's). Watchers take it before they Recheck, so no revoke slips
// between the two; every watcher wakes on any revoke, which is rare, rather
// than each polling on a ticker.
func (s *Service) RevocationChanged() <-chan struct{} { return s.rev.cur.Load().next }

// ValidFor is how much longer a token expiring at exp is accepted: until
// exp plus the clock skew, by this service's clock. It is <= 0 once the
// token is refused.
func (s *Service) ValidFor(exp time.Time) time.Duration {
	return exp.Add(s.cfg.ClockSkew).Sub(s.now())
}
