package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// Audit kinds of a session whose token stopped holding while it was open.
// Each session has at most one of them; its engine then ends the session.
const (
	KindSessionRevoked = "session.revoked"
	KindSessionExpired = "session.expired"
)

// Check reports whether the session's token still holds: not expired (exp
// plus the clock skew) and not revoked. Authorize calls it first, so every
// governed request of every engine rechecks the token. It is cheap: no
// signature is verified, and the revocation set is looked up only when it
// has gained an entry since the session last looked (identity.Recheck).
//
// A failure is sticky (every later Check returns the same error), is
// audited once per session as session.expired or session.revoked, and
// wraps ErrAuth and identity.ErrExpired or identity.ErrRevoked; its text
// after "authentication failed: " is safe to show the client.
func (p *Pipeline) Check(s *Session) error {
	if e := s.ended.Load(); e != nil {
		return *e
	}
	gen, err := p.Identity.Recheck(s.Claims.ID, s.Claims.ExpiresAt, s.revGen.Load())
	if err == nil {
		// Only a generation Recheck looked at is stored, so a racing
		// store of an older one costs a lookup, never a missed revoke.
		s.revGen.Store(gen)
		return nil
	}
	return p.end(s, err)
}

// end records and audits why the session's token stopped holding, once.
// It is apart from Check so that Check's hot path does not allocate.
func (p *Pipeline) end(s *Session, cause error) error {
	err := fmt.Errorf("%w: %w", ErrAuth, cause)
	if !s.ended.CompareAndSwap(nil, &err) {
		return *s.ended.Load() // another goroutine found it first, and audited it
	}
	p.countToken(err)
	kind := KindSessionExpired
	if errors.Is(err, identity.ErrRevoked) {
		kind = KindSessionRevoked
	}
	_, aerr := p.Audit.Enqueue(context.Background(), audit.Event{Kind: kind, Principal: s.uid, OnBehalfOf: s.Claims.Actor, TokenID: s.Claims.ID,
		Session: s.ID, Source: s.Source, Connection: s.Connection, Action: "session", Decision: "deny",
		Reason: EndReason(err), Details: map[string]string{"protocol": s.Protocol}})
	if aerr != nil {
		p.Logger.Error("audit append failed", "kind", kind, "err", aerr)
	}
	return err
}

// Ended is why the session's token stopped holding, once a Check found it
// (an error wrapping ErrAuth), or nil.
func (s *Session) Ended() error {
	if e := s.ended.Load(); e != nil {
		return *e
	}
	return nil
}

// EndReason is the part of a Check error safe to show and audit:
// "token revoked", "token expired at 2026-05-01T12:00:00Z".
func EndReason(err error) string {
	return strings.TrimPrefix(err.Error(), ErrAuth.Error()+": ")
}

// EndMessage says, for the client, why the session's token no longer
// holds: "the session's token was revoked", "the session's token expired
// at 2026-05-01T12:00:00Z".
func EndMessage(err error) string {
	switch {
	case errors.Is(err, identity.ErrRevoked):
		return "the session's token was revoked"
	case errors.Is(err, identity.ErrExpired):
		return "the session's token " + strings.TrimPrefix(EndReason(err), "token ")
	}
	return "the session's token no longer holds"
}

// Watch returns a context derived from ctx that ends, with the Check
// error as its cause (context.Cause), as soon as the session's token
// expires or is revoked, whether or not the session sends anything: an
// engine runs a long-lived session, or a long wait, under it and ends the
// session when it is done. stop releases the watch.
//
// Each watch is one parked goroutine with one timer (set for exp plus the
// clock skew) that also waits on identity's revocation broadcast: a revoke
// wakes every watch once, each Check is a map lookup, and nothing polls.
// A revoke made by another process (the CLI) arrives with identity's store
// refresh, so within identity.revocation_refresh.
func (p *Pipeline) Watch(ctx context.Context, s *Session) (wctx context.Context, stop context.CancelFunc) {
	wctx, cancel := context.WithCancelCause(ctx)
	go p.watch(wctx, s, cancel)
	return wctx, func() { cancel(nil) }
}

func (p *Pipeline) watch(ctx context.Context, s *Session, end context.CancelCauseFunc) {
	timer := time.NewTimer(p.Identity.ValidFor(s.Claims.ExpiresAt))
	defer timer.Stop()
	for {
		// Taken before the Check, so a revoke that lands between the two
		// closes it and the loop checks again.
		changed := p.Identity.RevocationChanged()
		if err := p.Check(s); err != nil {
			end(err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-timer.C:
			// Still valid when the monotonic timer fired: the wall clock
			// moved back. Wait for what is left by identity's clock.
			timer.Reset(p.Identity.ValidFor(s.Claims.ExpiresAt))
		}
	}
}
