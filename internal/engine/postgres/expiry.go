package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// A session lives no longer than its token. Every statement is rechecked
// (Pipeline.Authorize: expiry and revocation), and the whole relay runs
// under Pipeline.Watch, so an idle session is ended too: at exp plus the
// clock skew, or as soon as identity learns of a revoke (at once for a
// revoke on this gateway, within identity.revocation_refresh for one made
// by the CLI or another node).
//
// The client is told with a FATAL of SQLSTATE 57P01 (admin_shutdown), what
// PostgreSQL itself sends when pg_terminate_backend ends a backend, so
// clients and poolers treat it as "the server ended this session", and
// the message says why and what to do. Not class 28 (invalid
// authorization), which clients only expect during startup; not 57P05
// (idle_session_timeout) or 25P03 (idle_in_transaction_session_timeout),
// which would say the client was idle when it may not have been.

// watchToken derives the relay's context: it ends, with the reason as its
// cause, when the session's token expires or is revoked.
func (s *session) watchToken(ctx context.Context) (context.Context, context.CancelFunc) {
	return s.e.opts.Pipeline.Watch(ctx, s.gs)
}

// endedBy is why the relay's context ended: the token (a *fatal naming the
// reason) or the gateway shutting down (errShutdown).
func (s *session) endedBy(ctx context.Context) error {
	if f := tokenFatal(context.Cause(ctx)); f != nil {
		return f
	}
	if errors.Is(context.Cause(ctx), errCallEnded) {
		return errCallEnded
	}
	return errShutdown
}

// endFatal finishes a session that endedBy ended, once the upstream
// connection is closed and the backend goroutine has stopped: a statement
// still running upstream is cancelled (closing the connection alone would
// let PostgreSQL run it to the end, and commit it, for a principal that no
// longer holds a token), and the FATAL for the client is returned.
func (s *session) endFatal(err error) (code, msg string) {
	var f *fatal
	if !errors.As(err, &f) {
		return codeAdminShutdown, "gatehouse: the gateway is shutting down"
	}
	if s.head() != nil {
		s.cancelUpstream()
	}
	return f.code, f.msg
}

// tokenEnded is govern's hook: when Authorize refused a statement because
// the session's token expired or was revoked, the frontend ends the
// session with this FATAL. A statement the client pipelined before it is
// cancelled upstream.
func (s *session) tokenEnded(err error) *fatal {
	f := tokenFatal(err)
	if f != nil && s.head() != nil {
		s.cancelUpstream()
	}
	return f
}

// recheck is onBind's hook: a Bind executes a statement that was decided
// at its Parse, perhaps long before, so it rechecks the token (no policy
// decision, no signature: Pipeline.Check) and ends the session if the
// token has ended.
func (s *session) recheck() *fatal {
	return s.tokenEnded(s.e.opts.Pipeline.Check(s.gs))
}

// tokenFatal is the FATAL for a Check failure (an error wrapping
// gateway.ErrAuth, from Authorize or the watch), or nil for any other
// error.
func tokenFatal(err error) *fatal {
	if err == nil || !errors.Is(err, gateway.ErrAuth) {
		return nil
	}
	msg := "gatehouse: " + gateway.EndMessage(err)
	if errors.Is(err, identity.ErrExpired) {
		msg += "; reconnect with a new token"
	}
	return &fatal{code: codeAdminShutdown, msg: msg}
}

// cancelUpstream sends the upstream a CancelRequest for this session's
// backend, through the agent, as a client's cancel would go. Best effort:
// the session ends either way.
func (s *session) cancelUpstream() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.e.opts.Dialer.CancelPostgres(ctx, s.gs.Connection, s.up.PID, s.up.SecretKey); err != nil {
		s.e.opts.Logger.Warn("postgres cancel at token end failed", "connection", s.gs.Connection, "session", s.gs.ID, "err", err)
	}
}
