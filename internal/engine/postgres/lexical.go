package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
)

// The session's model must be the server's. Three settings change how the
// server reads SQL text (docs/security.md): standard_conforming_strings,
// client_encoding and backslash_quote. The analysis reads text as the server
// does with standard_conforming_strings=on in UTF-8, so the session starts
// that way (startup parameters, checked against the server's answer) and
// the backend goroutine tracks every ParameterStatus the server sends.
// A text that reads the same under every setting (sqlguard.Robust) can be
// analysed at any time; any other text only when the settings it will run
// under are known: when nothing that could have changed them is still in
// flight.

// lexState is what the upstream last reported; guarded by session.mu.
type lexState struct {
	scsOff bool // standard_conforming_strings is off
	// ranSinceRFQ: a message that may run code (Query, Bind, Execute) was
	// answered since the last ReadyForQuery, whose ParameterStatus reports
	// (sent just before ReadyForQuery since PostgreSQL 14) are still to come.
	ranSinceRFQ bool
}

// runs reports whether the upstream may run code for x, and so change a
// setting: a simple query, a Bind (planning evaluates functions) or an
// Execute.
func (x *expect) runs() bool { return x.kind == 'Q' || x.kind == 'B' || x.kind == 'E' }

// settledLocked reports whether the settings the upstream reported are the
// ones the next message will be read under.
func (s *session) settledLocked() bool {
	if s.lex.ranSinceRFQ {
		return false
	}
	for _, x := range s.queue {
		if x.runs() {
			return false
		}
	}
	return true
}

// settlesLocked reports whether the settings will become known without
// anything more from the client: a ReadyForQuery is due after every
// message in flight that may run code (a Sync's, or a simple query's own).
func (s *session) settlesLocked() bool {
	pending := s.lex.ranSinceRFQ
	for _, x := range s.queue {
		switch {
		case x.kind == 'S' || x.kind == 'Q':
			pending = false
		case x.runs():
			pending = true
		}
	}
	return !pending
}

// errNotSettled is the client's message for a text that can be read two
// ways while an earlier message in the same batch may have changed how.
var errNotSettled = errors.New("gatehouse: this statement has a backslash or non-ASCII text, which the server may read differently once an earlier statement of the same pipeline batch has run; send it after a Sync (or use E'' strings, Unicode escapes and bind parameters)")

// lexicalGate decides whether text may be analysed now. For a text that is
// not Robust it waits, while a ReadyForQuery that settles the settings is
// due, and refuses when none is or the settings are not the analysis's.
func (s *session) lexicalGate(ctx context.Context, text string) *denial {
	if sqlguard.Robust(text) {
		return nil
	}
	deadline := time.Now().Add(lexicalWait)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		settled, settles, scsOff := s.settledLocked(), s.settlesLocked(), s.lex.scsOff
		switch {
		case settled && scsOff:
			return s.deny(codeFeatureNotSupported, "gatehouse: standard_conforming_strings is off in this session, and the gateway reads SQL text only as the server does with it on: statements with a backslash or non-ASCII text are refused; RESET standard_conforming_strings, or use E'' strings and bind parameters")
		case settled:
			return nil
		case !settles:
			return s.deny(codeFeatureNotSupported, errNotSettled.Error())
		}
		if err := s.waitLocked(ctx, deadline); err != nil {
			return s.deny(codeFeatureNotSupported, errNotSettled.Error())
		}
	}
}

// lexicalWait bounds how long a statement waits for earlier ones to settle.
const lexicalWait = 30 * time.Second

// waitLocked is called with s.mu held, by the frontend goroutine, after
// it checked the state it waits on: it registers as a waiter before
// letting go of the lock (so a change made between the check and the wait
// is not missed), flushes what the frontend has written upstream (the
// answers it waits for need it), and waits until the backend goroutine
// pops an expectation, the session ends, ctx ends or the deadline passes.
// It returns with s.mu held again.
func (s *session) waitLocked(ctx context.Context, deadline time.Time) error {
	if s.ended {
		return errSessionEnded
	}
	ch := s.changed
	s.waiters++
	s.mu.Unlock()
	err := s.uw.Flush() // uw is the frontend's own; never under s.mu
	if err == nil {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		case <-t.C:
			err = context.DeadlineExceeded
		}
		t.Stop()
	}
	s.mu.Lock()
	s.waiters--
	return err
}

var errSessionEnded = errors.New("session ended")

// broadcastLocked wakes frontend waiters; called with s.mu held whenever
// the queue or the reported settings change.
func (s *session) broadcastLocked() {
	if s.waiters > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// deny builds a denial with a fresh marker.
func (s *session) deny(code, reason string) *denial {
	return &denial{marker: s.marker(), reason: reason, code: code}
}

// onParameterStatus tracks the settings the analysis depends on; it runs
// on the backend goroutine for every ParameterStatus the upstream sends.
// A change the gateway cannot follow ends the session.
func (s *session) onParameterStatus(body []byte) error {
	name, rest, ok := cstring(body)
	if !ok {
		return errors.New("upstream ParameterStatus: malformed")
	}
	value, _, ok := cstring(rest)
	if !ok {
		return errors.New("upstream ParameterStatus: malformed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch name {
	case "standard_conforming_strings":
		s.lex.scsOff = value != "on"
	case "client_encoding":
		// Analysis and masking work on UTF-8; a session the server now
		// answers in another encoding cannot be governed.
		if value != "UTF8" {
			return &fatal{code: codeFeatureNotSupported, msg: "gatehouse: the session's client_encoding changed to " + value + "; sessions through Gatehouse run in UTF8, so the session has ended"}
		}
	case "default_transaction_read_only":
		s.roOn = value == "on"
		if !s.roOn && s.roWant {
			return &fatal{code: codeInsufficientPrivilege, msg: "gatehouse: default_transaction_read_only was turned off in a read-only session; the session has ended"}
		}
	}
	return nil
}
