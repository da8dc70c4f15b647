package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// The second wall. The analysis classifies every statement, but a read can
// reach code the analysis does not see (a view over a function, a stable
// function calling a volatile one, a trigger). So a session whose principal
// may not write runs with default_transaction_read_only=on (a startup
// parameter), the server itself then refusing any write in it; the engine
// refuses statements that would lift it (FlagReadWrite) and ends the
// session if the server reports it off without the gateway asking. When the
// policy allows such a session a write (a just-in-time grant, a policy of
// the administrator's), the engine lowers the wall just before it and
// raises it again before the next read, both with a SET of its own between
// the client's statements. docs/security.md says what it does not stop.

// writeScopes are the token scopes that may write.
var writeScopes = []identity.Scope{identity.ScopeWrite, identity.ScopeDDL, identity.ScopeAdmin}

// readOnlyBase reports whether the session is read-only by its principal:
// an agent whose token has no writing scope, or any principal on a
// connection configured read_only.
func (s *session) readOnlyBase() bool {
	if s.target.ReadOnly {
		return true
	}
	if s.gs.Claims.Kind == identity.KindUser {
		return false
	}
	return !slices.ContainsFunc(s.gs.Claims.Scopes, func(sc identity.Scope) bool { return slices.Contains(writeScopes, sc) })
}

// adjustWall lowers the wall before a write the policy allowed, and raises
// it again before a statement that does not write. It injects its SET only
// between transactions with nothing in flight, and never before a Bind (a
// simple query destroys the unnamed statement a Bind may use): elsewhere a
// write in a walled session is refused by the server (SQLSTATE 25006), and
// the client retries it.
func (s *session) adjustWall(writes bool) error {
	if !s.roBase || s.target.ReadOnly && writes {
		return nil
	}
	s.mu.Lock()
	idle := len(s.queue) == 0 && s.txStatus == 'I' && !s.fe.inBatch && !s.skipping
	on := s.roOn // what the server reported: a RESET ALL may have raised it
	s.mu.Unlock()
	if !idle {
		return nil
	}
	if on == writes {
		return s.injectWall(!writes)
	}
	return nil
}

// lowerWallForBind lowers the wall for a write the policy allowed at a
// Bind (a held statement, once approved). A Bind usually comes in the same
// batch as its Parse, inside the implicit transaction that Parse began, read
// only: when nothing but Parse, Describe and Close is in flight (nothing of
// the batch has run), the engine ends that transaction with a Sync of its
// own, then lowers the wall, so the approved write runs in a new
// transaction. Otherwise the write is refused by the server (25006).
func (s *session) lowerWallForBind() error {
	if !s.roBase || s.target.ReadOnly {
		return nil
	}
	s.mu.Lock()
	on, split := s.roOn, !s.skipping && s.txStatus == 'I'
	for _, x := range s.queue {
		if x.injected || (x.kind != 'P' && x.kind != 'D' && x.kind != 'C') {
			split = false
		}
	}
	s.mu.Unlock()
	if !on || !split {
		return nil
	}
	if s.fe.inBatch {
		s.push(&expect{kind: 'S', injected: true})
		if err := writeFrame(s.uw, 'S', nil); err != nil {
			return err
		}
	}
	return s.injectWall(false)
}

// settleWall holds the start of a batch in a read-only session until the
// server has answered everything sent before it: a setting an earlier
// statement changed is reported only before its ReadyForQuery, and the
// next transaction would already run under it. A changed
// default_transaction_read_only ends the session there (onParameterStatus),
// before anything else is forwarded.
func (s *session) settleWall(ctx context.Context) error {
	deadline := time.Now().Add(lexicalWait)
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.settledLocked() {
		if err := s.waitLocked(ctx, deadline); err != nil {
			return &fatal{code: codeInsufficientPrivilege, msg: "gatehouse: a read-only session's earlier statements did not finish; the session has ended"}
		}
	}
	return nil
}

// injectWall sends SET default_transaction_read_only upstream as a simple
// query whose responses the client never sees.
func (s *session) injectWall(on bool) error {
	q := "SET default_transaction_read_only = off"
	if on {
		q = "SET default_transaction_read_only = on"
	}
	s.mu.Lock()
	s.roWant, s.roOn = on, on // the server's report, where it sends one, follows
	s.mu.Unlock()
	s.push(&expect{kind: 'Q', injected: true})
	return writeFrame(s.uw, 'Q', append([]byte(q), 0))
}
