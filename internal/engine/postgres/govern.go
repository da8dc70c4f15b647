package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
)

// decision is the outcome of governing one statement or one execution.
type decision struct {
	deny *denial
	hold *gateway.Hold
	rec  *stmtRecord
	// writes: an allowed access changes something, so a read-only wall
	// must be down for it (readonly.go).
	writes bool
	// fatal ends the session: its token expired or was revoked (expiry.go).
	fatal *fatal
}

// verdictKey is what a session's verdict cache is keyed by: the analysis
// (one per statement shape) and the function catalog its calls were
// classified with.
type verdictKey struct {
	a   *sqlguard.Analysis
	cat *sqlguard.Catalog
}

// request builds the pipeline request for a: one access per table (or the
// connection), and sql:call for every function it may call that is not
// known to be read-only.
func (s *session) request(ctx context.Context, a *sqlguard.Analysis, extended bool) gateway.Request {
	calls, extra, cat := s.callAccesses(ctx, a)
	flags := a.Flags
	if len(extra) > 0 {
		flags = slices.Concat(a.Flags, extra) // a.Flags is shared: never appended to
	}
	req := gateway.Request{
		Context: map[string]any{
			"class":     string(a.Class),
			"tables":    a.Tables,
			"columns":   a.Columns,
			"functions": a.Functions,
			"settings":  a.Settings,
			"flags":     flags,
			"database":  s.database,
		},
		CacheKey:   verdictKey{a, cat},
		Generation: s.e.opts.Analyzer.Generation(),
	}
	for _, acc := range a.Accesses {
		if acc.Table == "" {
			req.Accesses = append(req.Accesses, gateway.Access{Action: acc.Action, ResourceType: policy.Connection, ResourceID: s.gs.Connection})
		} else {
			req.Accesses = append(req.Accesses, gateway.Access{Action: acc.Action, ResourceType: policy.Table, ResourceID: s.gs.Connection + "/" + acc.Table})
		}
	}
	if len(req.Accesses) == 0 {
		req.Accesses = []gateway.Access{{Action: a.Class.Action(), ResourceType: policy.Connection, ResourceID: s.gs.Connection}}
	}
	req.Accesses = append(req.Accesses, calls...)
	req.Audit.Details = map[string]string{"statement": a.Normalized, "fingerprint": a.Fingerprint, "class": string(a.Class), "database": s.database}
	if len(flags) > 0 {
		req.Audit.Details["flags"] = strings.Join(flags, ",")
	}
	if extended {
		req.Audit.Details["protocol"] = "extended"
	}
	return req
}

// decide governs analysis a: the engine's own refusals first, then the
// pipeline (policy, audit). quiet leaves an allowed, unheld decision out
// of the audit log (a Parse, whose every execution is decided and audited
// at its Bind).
func (s *session) decide(ctx context.Context, a *sqlguard.Analysis, extended, quiet bool) decision {
	if d := s.engineRefusal(a); d != nil {
		s.auditRefusal(a, d)
		return decision{deny: d, rec: s.newRecord(a, gateway.Verdict{Reason: d.reason})}
	}
	req := s.request(ctx, a, extended)
	req.QuietAllow = quiet
	v, err := s.e.opts.Pipeline.Authorize(ctx, s.gs, req)
	if f := s.tokenEnded(err); f != nil {
		return decision{fatal: f}
	}
	if err != nil {
		// The audit log cannot take the event: nothing runs unlogged.
		return decision{deny: s.deny(codeCannotConnectNow, "gatehouse: statement refused: "+gateway.AuditRefusal(err))}
	}
	rec := s.newRecord(a, v)
	if !v.Allow {
		return decision{deny: s.deny(codeInsufficientPrivilege, "gatehouse: "+v.Reason), rec: rec}
	}
	return decision{hold: v.Hold, rec: rec, writes: writes(req.Accesses)}
}

// writeActions change data, the schema or the server's state: the actions
// a read-only session's wall must be lowered for.
var writeActions = []string{"sql:insert", "sql:update", "sql:delete", "sql:ddl", "sql:dcl", "sql:call",
	"sql:maintenance", "sql:lock", "sql:notify", "sql:load", "sql:unparsed"}

func writes(accs []gateway.Access) bool {
	return slices.ContainsFunc(accs, func(a gateway.Access) bool { return slices.Contains(writeActions, a.Action) })
}

// engineRefusal is what the engine refuses whatever the policy says,
// because the gateway's model of the session would stop being the
// server's.
func (s *session) engineRefusal(a *sqlguard.Analysis) *denial {
	if slices.Contains(a.Settings, "client_encoding") {
		return s.deny(codeFeatureNotSupported, "gatehouse: client_encoding is fixed at UTF8 for sessions through Gatehouse")
	}
	if s.roBase && a.HasFlag(sqlguard.FlagReadWrite) {
		return s.deny(codeInsufficientPrivilege, "gatehouse: this session is read-only (the token's scopes do not include write): read-write transactions and changes to transaction_read_only are refused")
	}
	if s.roBase {
		// The server reports a changed default_transaction_read_only only
		// before ReadyForQuery: a transaction that starts later in the
		// same query string could start read-write.
		for _, st := range a.Statements[:max(len(a.Statements)-1, 0)] {
			if st.HasFlag(sqlguard.FlagEndsTransaction) {
				return s.deny(codeInsufficientPrivilege, "gatehouse: in a read-only session a transaction may end only at the end of a query string; send what follows COMMIT or ROLLBACK separately")
			}
		}
	}
	for _, st := range a.Statements {
		for _, n := range append(slices.Clip(st.Executes), st.Prepares, st.Deallocates) {
			if strings.HasPrefix(n, privatePrefix) {
				return s.deny(codeInsufficientPrivilege, fmt.Sprintf("gatehouse: prepared statement names starting with %q are reserved", privatePrefix))
			}
		}
	}
	return nil
}

// auditRefusal logs an engine refusal as a decision.
func (s *session) auditRefusal(a *sqlguard.Analysis, d *denial) {
	ev := audit.Event{Kind: audit.KindDecision, Action: a.Class.Action(), Resource: s.gs.Connection, Decision: "deny", Reason: d.reason,
		Details: map[string]string{"statement": a.Normalized, "fingerprint": a.Fingerprint, "class": string(a.Class), "database": s.database, "refused_by": "engine"}}
	s.e.auditSession(s.gs, ev)
}

// undefinedStatement is the server's own error for a name that means no
// prepared statement (SQLSTATE 26000).
func (s *session) undefinedStatement(name string) *denial {
	return s.deny("26000", fmt.Sprintf("prepared statement %q does not exist", name))
}

// duplicateStatement is the server's own error for a Parse or PREPARE of a
// name in use (SQLSTATE 42P05).
func (s *session) duplicateStatement(name string) *denial {
	return s.deny("42P05", fmt.Sprintf("prepared statement %q already exists", name))
}
