package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The attack review of issue 10, as regression tests: a prompt-injected
// agent with read-, write- or ddl-scoped tokens against a superuser
// upstream account. Every test checks what the upstream did (the direct
// connection), not only what the client was told.

// attackSetup creates the objects a privileged user made earlier that a
// hostile agent tries to abuse.
func attackSetup(h *harness) {
	h.evil = "gh_evil_" + randHex(4) // roles are cluster-wide: a name of this run's own
	h.exec(
		`CREATE TABLE scratch (id int)`,
		`CREATE TABLE t (id int PRIMARY KEY, v text)`,
		`INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 10) i`,
		`CREATE SEQUENCE s`,
		`CREATE FUNCTION evil_delete() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t; RETURN 1; END $$`,
		`CREATE PROCEDURE evil_proc() LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t; END $$`,
		// Stable, so the catalog takes it for a read; it calls a writer.
		`CREATE FUNCTION sneaky() RETURNS int STABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM evil_delete(); RETURN 1; END $$`,
		`CREATE VIEW v_evil AS SELECT evil_delete() AS n`,
		`CREATE FUNCTION scs_off() RETURNS text LANGUAGE sql AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$`,
		`CREATE FUNCTION enc_sjis() RETURNS text LANGUAGE sql AS $$ SELECT set_config('client_encoding', 'SJIS', false) $$`,
		`CREATE FUNCTION rw_on() RETURNS text STABLE LANGUAGE sql AS $$ SELECT set_config('default_transaction_read_only', 'off', false) $$`,
		`CREATE FUNCTION harmless(x int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT x + 1 $$`,
	)
}

// upstreamState is what the attacks must not have changed.
func (h *harness) upstreamState(t *testing.T) string {
	t.Helper()
	db, err := sql.Open("pgx", h.upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, roles, scratch int
	var seq int64
	var called bool
	q := `SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM pg_roles WHERE rolname = $1),
	             (SELECT count(*) FROM pg_class WHERE relname = 'scratch'), (SELECT last_value FROM s), (SELECT is_called FROM s)`
	if err := db.QueryRow(q, h.evil).Scan(&rows, &roles, &scratch, &seq, &called); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("rows=%d evil_roles=%d scratch=%d seq=%d/%v", rows, roles, scratch, seq, called)
}

const untouched = "rows=10 evil_roles=0 scratch=1 seq=1/false"

func TestAttackReadScopeCannotWrite(t *testing.T) {
	// An administrator declared sneaky and rw_on read-only, wrongly: they
	// stand for code the analysis cannot see into (a C function, say),
	// which only the second wall stops.
	h := newHarness(t, harnessOpts{superuser: true, connExtra: "    read_only_functions: [public.sneaky, public.rw_on]\n"})
	attackSetup(h)
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	denied := []struct{ sql, want string }{
		{"SELECT evil_delete()", "sql:call"},
		{"EXPLAIN ANALYZE SELECT evil_delete()", "sql:call"},
		{"SELECT public.evil_delete()", "sql:call"},
		{"SELECT * FROM (SELECT evil_delete()) x", "sql:call"},
		{"CALL evil_proc()", "sql:call"},
		{"SELECT setval('s', 100)", "sql:call"},
		{"SELECT nextval('s')", "sql:call"},
		{"SELECT pg_import_system_collations('pg_catalog')", "sql:call"},
		{"SELECT pg_advisory_lock(1)", "sql:call"},
		{"LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "sql:lock"},
		{"VACUUM FULL t", "sql:maintenance"},
		{"REINDEX TABLE t", "sql:maintenance"},
		{"CHECKPOINT", "sql:maintenance"},
		{"LOAD 'plpgsql'", "guard-load"},
		{"SET log_statement = 'none'", "guard-settings"},
		{"SET session_replication_role = replica", "guard-settings"},
		{"SET allow_system_table_mods = on", "guard-settings"},
		{`SET "LOG_STATEMENT" TO 'none'`, "guard-settings"},
		{"SET standard_conforming_strings = off", "guard-settings"},
		{"SELECT rolpassword FROM pg_authid", "guard-secret-catalogs"},
		{`SELECT * FROM "pg_catalog"."pg_shadow"`, "guard-secret-catalogs"},
		{"SELECT * FROM pg_user_mappings", "guard-secret-catalogs"},
		{"SELECT most_common_vals FROM pg_stats", "guard-secret-catalogs"},
		{"BEGIN READ WRITE", "read-only"},
		{"SET default_transaction_read_only = off", "read-only"},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "read-only"},
		{"START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE", "read-only"},
	}
	for _, d := range denied {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			_, err := c.Exec(ctx, d.sql, mode)
			pe := pgErr(err)
			if pe == nil || pe.Code != "42501" || !strings.Contains(pe.Message, d.want) {
				t.Errorf("%s (mode %v): %v, want 42501 naming %s", d.sql, mode, err, d.want)
			}
		}
	}
	// The second wall: a function taken for a read that reaches a writer
	// passes the analysis, and the server refuses the write.
	for _, q := range []string{"SELECT sneaky()", "SELECT * FROM (SELECT sneaky()) s"} {
		_, err := c.Exec(ctx, q)
		if pe := pgErr(err); pe == nil || pe.Code != "25006" {
			t.Errorf("%s: %v, want the server's read-only refusal 25006", q, err)
		}
	}
	// Reads keep working, with functions known to be read-only.
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) + harmless(1) + length(lower('AB')) FROM t WHERE id BETWEEN 1 AND 10 AND now() > '2000-01-01'").Scan(&n); err != nil || n != 14 {
		t.Fatalf("read: n=%d err=%v", n, err)
	}
	if got := h.upstreamState(t); got != untouched {
		t.Fatalf("upstream changed: %s, want %s", got, untouched)
	}
	// A stable function that turns the wall off ends the session.
	_, err := c.Exec(ctx, "SELECT rw_on()", pgx.QueryExecModeSimpleProtocol)
	if err == nil {
		_, err = c.Exec(ctx, "SELECT 1")
	}
	if pe := pgErr(err); pe == nil || !strings.Contains(pe.Message, "default_transaction_read_only was turned off") {
		t.Fatalf("turning the wall off: %v, want the session ended", err)
	}
}

// TestAttackWriteScopeCalls: write scope may call functions (sql:call),
// which is what lets it change a setting from inside one.
func TestAttackLexicalSettings(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, extraPolicy: `
@id("dba-all") permit (principal in Group::"dba", action, resource);`})
	attackSetup(h)
	ctx := context.Background()
	// Roles are cluster-wide: a name of this run's own.
	payload := `SELECT '\' AS a -- ' ; DROP TABLE scratch; CREATE ROLE ` + h.evil + ` SUPERUSER LOGIN PASSWORD 'x'; -- '`

	t.Run("human sets standard_conforming_strings off", func(t *testing.T) {
		c := connect(t, h.dsn(h.userToken("dba@example.com", "dba")))
		if _, err := c.Exec(ctx, "SET standard_conforming_strings = off"); err != nil {
			t.Fatalf("SET by a human with a permit-all policy: %v", err)
		}
		_, err := c.Exec(ctx, payload, pgx.QueryExecModeSimpleProtocol)
		if pe := pgErr(err); pe == nil || pe.Code != "0A000" || !strings.Contains(pe.Message, "standard_conforming_strings is off") {
			t.Fatalf("payload after scs=off: %v", err)
		}
		// Text that reads the same either way still runs.
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 10 {
			t.Fatalf("robust text after scs=off: %d %v", n, err)
		}
	})
	t.Run("function turns it off, then the payload", func(t *testing.T) {
		c := connect(t, h.dsn(h.token("writer", "write")))
		if _, err := c.Exec(ctx, "SELECT scs_off()", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("scs_off: %v", err)
		}
		_, err := c.Exec(ctx, payload, pgx.QueryExecModeSimpleProtocol)
		if pe := pgErr(err); pe == nil || pe.Code != "0A000" {
			t.Fatalf("payload: %v", err)
		}
	})
	t.Run("pipelined simple queries", func(t *testing.T) {
		r := h.raw(t, h.token("writer", "write"))
		r.send(&pgproto3.Query{String: "SELECT scs_off()"}, &pgproto3.Query{String: payload})
		res := r.untilReady(t, 2)
		if !strings.Contains(res, "0A000") {
			t.Fatalf("pipelined payload: %s", res)
		}
	})
	t.Run("same extended batch", func(t *testing.T) {
		r := h.raw(t, h.token("writer", "write"))
		r.send(
			&pgproto3.Parse{Query: "SELECT scs_off()"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Name: "p2", Query: payload}, &pgproto3.Bind{PreparedStatement: "p2"}, &pgproto3.Execute{},
			&pgproto3.Sync{})
		res := r.untilReady(t, 1)
		if !strings.Contains(res, "0A000") || !strings.Contains(res, "same pipeline batch") {
			t.Fatalf("extended batch payload: %s", res)
		}
	})
	t.Run("client_encoding", func(t *testing.T) {
		for _, q := range []string{"SET client_encoding = 'SJIS'", "SET NAMES 'SJIS'", "RESET client_encoding"} {
			c := connect(t, h.dsn(h.userToken("dba@example.com", "dba")))
			_, err := c.Exec(ctx, q)
			if pe := pgErr(err); pe == nil || pe.Code != "0A000" || !strings.Contains(pe.Message, "client_encoding is fixed") {
				t.Errorf("%s: %v", q, err)
			}
		}
		// From inside a function: the session ends before anything else
		// is read in SJIS.
		r := h.raw(t, h.token("writer", "write"))
		r.send(&pgproto3.Query{String: "SELECT enc_sjis()"}, &pgproto3.Query{String: "SELECT '\xc3\x81\x5c' ; DELETE FROM t WHERE id > 0; --'"})
		res := r.untilClosed(t)
		if !strings.Contains(res, "client_encoding changed") {
			t.Fatalf("SJIS from a function: %s", res)
		}
	})
	time.Sleep(200 * time.Millisecond)
	if got := h.upstreamState(t); got != untouched {
		t.Fatalf("upstream changed: %s, want %s", got, untouched)
	}
}

func TestAttackPreparedStatements(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, extraConfig: "approvals: {timeout: 2s}\n"})
	attackSetup(h)
	exists := func(rel string) bool {
		db, _ := sql.Open("pgx", h.upstream)
		defer db.Close()
		var n int
		db.QueryRow("SELECT count(*) FROM pg_class WHERE relname = $1", rel).Scan(&n)
		return n > 0
	}
	t.Run("re-Parse drops no hold", func(t *testing.T) {
		r := h.raw(t, h.token("builder", "ddl"))
		r.send(&pgproto3.Parse{Name: "s1", Query: "CREATE TABLE reparse_x (a int)"}, &pgproto3.Sync{})
		if res := r.untilReady(t, 1); strings.Contains(res, "ERROR") {
			t.Fatalf("held parse: %s", res)
		}
		r.send(&pgproto3.Parse{Name: "s1", Query: "SELECT 1"}, &pgproto3.Sync{})
		if res := r.untilReady(t, 1); !strings.Contains(res, "42P05") {
			t.Fatalf("re-Parse of a held name: %s, want 42P05", res)
		}
		r.send(&pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		res := r.untilReady(t, 1)
		if !strings.Contains(res, "approval required") || !strings.Contains(res, "42501") {
			t.Fatalf("Bind of the held statement: %s", res)
		}
		if exists("reparse_x") {
			t.Fatal("the held DDL ran without an approval")
		}
	})
	t.Run("SQL EXECUTE of a held statement", func(t *testing.T) {
		r := h.raw(t, h.token("builder", "ddl"))
		r.send(&pgproto3.Parse{Name: "s2", Query: "CREATE TABLE exec_x (a int)"}, &pgproto3.Sync{})
		r.untilReady(t, 1)
		for _, q := range []string{"EXECUTE s2", "EXPLAIN ANALYZE EXECUTE s2", "CREATE TABLE exec_y AS EXECUTE s2", "execute S2"} {
			r.send(&pgproto3.Query{String: q})
			if res := r.untilReady(t, 1); !strings.Contains(res, "42501") {
				t.Errorf("%s: %s", q, res)
			}
		}
		if exists("exec_x") || exists("exec_y") {
			t.Fatal("a held statement ran through EXECUTE")
		}
	})
	t.Run("EXECUTE is decided as what it runs", func(t *testing.T) {
		w := connect(t, h.dsn(h.token("writer", "write")))
		ctx := context.Background()
		if _, err := w.Exec(ctx, "PREPARE del(int) AS DELETE FROM t WHERE id = $1", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Exec(ctx, "EXECUTE del(10)", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("write scope EXECUTE of its DELETE: %v", err)
		}
		// A read-scoped session has no such statement, and cannot make
		// one that writes.
		r := connect(t, h.dsn(h.token("reader", "read")))
		if _, err := r.Exec(ctx, "PREPARE del2(int) AS DELETE FROM t WHERE id = $1", pgx.QueryExecModeSimpleProtocol); pgErr(err) == nil || pgErr(err).Code != "42501" {
			t.Fatalf("read PREPARE of a DELETE: %v", err)
		}
		if _, err := r.Exec(ctx, "EXECUTE del(9)", pgx.QueryExecModeSimpleProtocol); pgErr(err) == nil || pgErr(err).Code != "26000" {
			t.Fatalf("read EXECUTE of an unknown name: %v", err)
		}
		// PREPARE then EXECUTE in one string: the EXECUTE is the DELETE.
		if _, err := r.Exec(ctx, "PREPARE p AS SELECT 1; EXECUTE p", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("PREPARE and EXECUTE of a read: %v", err)
		}
		h.exec(`INSERT INTO t VALUES (10, 'v10')`)
	})
	t.Run("Bind of a SQL-prepared statement", func(t *testing.T) {
		r := h.raw(t, h.token("reader", "read"))
		r.send(&pgproto3.Query{String: "PREPARE q AS SELECT count(*) FROM t"})
		r.untilReady(t, 1)
		r.send(&pgproto3.Bind{PreparedStatement: "q"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if res := r.untilReady(t, 1); !strings.Contains(res, "SELECT 1") {
			t.Fatalf("Bind of PREPAREd q: %s", res)
		}
		r.send(&pgproto3.Bind{PreparedStatement: "gatehouse_x"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if res := r.untilReady(t, 1); !strings.Contains(res, "26000") {
			t.Fatalf("Bind of a private name: %s", res)
		}
	})
	if got := h.upstreamState(t); got != untouched {
		t.Fatalf("upstream changed: %s, want %s", got, untouched)
	}
}

func TestAttackOtherDatabase(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	tok := h.token("reader", "read")
	dsn := strings.Replace(h.dsn(tok), "/"+h.db+"?", "/postgres?", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pgx.Connect(ctx, dsn)
	if pe := pgErr(err); pe == nil || pe.Code != "42501" || !strings.Contains(pe.Message, `does not serve database "postgres"`) {
		t.Fatalf("dbname=postgres: %v", err)
	}
}

func TestAuditKeepsNoComment(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	if _, err := c.Exec(ctx, "SELECT 1 /* card 4111111111111111 */ -- and 5500005555555559\n", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	var evs []json.RawMessage
	seen := false
	for deadline := time.Now().Add(5 * time.Second); !seen && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if evs, err = h.gw.Admin.TailAudit(ctx, 20); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			seen = seen || strings.Contains(string(e), "SELECT")
		}
	}
	for _, e := range evs {
		if strings.Contains(string(e), "SELECT") {
			seen = true
		}
		if strings.Contains(string(e), "4111111111111111") || strings.Contains(string(e), "5500005555555559") {
			t.Fatalf("an audit event keeps a comment's card number: %s", e)
		}
	}
	if !seen {
		t.Fatal("no audit event for the statement")
	}
}

func TestAnalysisLimits(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "postgres: {max_query_bytes: 8388608}\n"})
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	huge := strings.Repeat("SELECT 1;", 500000)
	_, err := c.Exec(ctx, huge, pgx.QueryExecModeSimpleProtocol)
	if pe := pgErr(err); pe == nil || pe.Code != "54000" || !strings.Contains(pe.Message, "at most 10000 statements") {
		t.Fatalf("500,000 statements: %v", err)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("after a refused huge query: %v", err)
	}
	h2 := newHarness(t, harnessOpts{})
	c2 := connect(t, h2.dsn(h2.token("reader", "read")))
	_, err = c2.Exec(ctx, "SELECT '"+strings.Repeat("x", 2<<20)+"'", pgx.QueryExecModeSimpleProtocol)
	if pe := pgErr(err); pe == nil || pe.Code != "54000" || !strings.Contains(pe.Message, "max_query_bytes") {
		t.Fatalf("2 MiB statement: %v", err)
	}
}

// raw opens a hand-driven protocol session through the gateway.
func (h *harness) raw(t *testing.T, token string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", h.pgAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := pgconnFrontend(conn)
	if err := r.startup(h.db, token); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rawClient) send(msgs ...pgproto3.FrontendMessage) {
	for _, m := range msgs {
		r.fe.Send(m)
	}
	r.fe.Flush()
}

// untilReady reads n ReadyForQuery messages and returns what came, one
// line per message that matters.
func (r *rawClient) untilReady(t *testing.T, n int) string {
	t.Helper()
	r.conn.SetDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	for n > 0 {
		m, err := r.fe.Receive()
		if err != nil {
			t.Fatalf("receive: %v (so far: %s)", err, b.String())
		}
		describe(&b, m)
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			n--
		}
	}
	return b.String()
}

// untilClosed reads until the gateway closes the connection.
func (r *rawClient) untilClosed(t *testing.T) string {
	t.Helper()
	r.conn.SetDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	for {
		m, err := r.fe.Receive()
		if err != nil {
			return b.String()
		}
		describe(&b, m)
	}
}

func describe(b *strings.Builder, m pgproto3.BackendMessage) {
	switch m := m.(type) {
	case *pgproto3.ErrorResponse:
		fmt.Fprintf(b, "%s %s %s\n", m.Severity, m.Code, m.Message)
	case *pgproto3.NoticeResponse:
		fmt.Fprintf(b, "NOTICE %s\n", m.Message)
	case *pgproto3.CommandComplete:
		fmt.Fprintf(b, "%s\n", m.CommandTag)
	case *pgproto3.ParseComplete:
		b.WriteString("ParseComplete\n")
	case *pgproto3.ReadyForQuery:
		b.WriteString("Ready\n")
	}
}

// TestAttackUserSchemaShadow: the analysis names an unqualified table
// public.<name>; with the server's default search_path a schema named
// after the upstream role would be searched first, so a policy on
// public.notes would decide what reads another table.
func TestAttackUserSchemaShadow(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, extraPolicy: `
@id("no-public-secrets") @reason("public.secrets is off limits")
forbid (principal is Agent, action in Action::"sql", resource) when { context.tables.contains("public.secrets") };`})
	u, _ := url.Parse(h.upstream)
	role := u.User.Username()
	h.exec(
		`CREATE TABLE notes (v text)`, `INSERT INTO notes VALUES ('public')`,
		`CREATE TABLE secrets (v text)`, `INSERT INTO secrets VALUES ('top secret')`,
		`CREATE SCHEMA `+role, `CREATE VIEW `+role+`.notes AS SELECT v FROM public.secrets`,
	)
	c := connect(t, h.dsn(h.token("reader", "read")))
	var v string
	if err := c.QueryRow(context.Background(), "SELECT v FROM notes").Scan(&v); err != nil || v != "public" {
		t.Fatalf("SELECT v FROM notes = %q, %v: the server read another table than the analysis named", v, err)
	}
}

// TestAttackHiddenCalls: functions reached without a function call in the
// text are classified too.
func TestAttackHiddenCalls(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	h.exec(
		`CREATE FUNCTION evil_attr(t) RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM evil_delete(); RETURN 1; END $$`,
		`CREATE FUNCTION evil_sfunc(int, int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM evil_delete(); RETURN 1; END $$`,
		`CREATE AGGREGATE evil_agg(int) (sfunc = evil_sfunc, stype = int)`,
		`CREATE TYPE evil_t AS (a int)`,
		`CREATE FUNCTION evil_cast(text) RETURNS evil_t LANGUAGE plpgsql AS $$ BEGIN PERFORM evil_delete(); RETURN ROW(1); END $$`,
		`CREATE CAST (text AS evil_t) WITH FUNCTION evil_cast(text)`,
		`CREATE FUNCTION evil_op(int, int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN PERFORM evil_delete(); RETURN true; END $$`,
		`CREATE OPERATOR ### (leftarg = int, rightarg = int, function = evil_op)`,
		`CREATE VIEW v_outer AS SELECT * FROM v_evil`,
	)
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	for _, q := range []string{
		"SELECT t.evil_attr FROM t",
		"SELECT evil_agg(id) FROM t",
		"SELECT 'x'::text::evil_t",
		"SELECT CAST('x'::text AS evil_t)",
		"SELECT 1 ### 2",
		"SELECT * FROM t WHERE id ### 1",
		"SELECT * FROM v_evil",
		"SELECT * FROM v_outer",
	} {
		_, err := c.Exec(ctx, q)
		if pe := pgErr(err); pe == nil || pe.Code != "42501" || !strings.Contains(pe.Message, "sql:call") {
			t.Errorf("%s: %v, want 42501 sql:call", q, err)
		}
	}
	if got := h.upstreamState(t); got != untouched {
		t.Fatalf("upstream changed: %s, want %s", got, untouched)
	}
}

// TestAttackStableBodiesRead: a stable SQL or PL/pgSQL function is a read
// only if its body is: one that calls a writer, set_config or dynamic SQL
// is sql:call.
func TestAttackStableBodiesRead(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	h.exec(
		`CREATE FUNCTION dyn() RETURNS int STABLE LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DELETE FROM t'; RETURN 1; END $$`,
		`CREATE FUNCTION chain() RETURNS int STABLE LANGUAGE sql AS $$ SELECT sneaky() $$`,
		`CREATE FUNCTION atomic_rw() RETURNS text STABLE LANGUAGE sql BEGIN ATOMIC SELECT set_config('default_transaction_read_only', 'off', false); END`,
		`CREATE FUNCTION calm_pl(x int) RETURNS int STABLE LANGUAGE plpgsql AS $$ DECLARE y int; BEGIN SELECT count(*) INTO y FROM t WHERE id > x; y := y + harmless(1); RETURN y; END $$`,
		`CREATE FUNCTION calm_rec(n int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT CASE WHEN n <= 0 THEN 0 ELSE calm_rec(n - 1) + 1 END $$`,
	)
	c := connect(t, h.dsn(h.token("reader", "read")))
	ctx := context.Background()
	for _, q := range []string{"SELECT sneaky()", "SELECT rw_on()", "SELECT dyn()", "SELECT chain()", "SELECT atomic_rw()"} {
		if _, err := c.Exec(ctx, q); errCode(err) != "42501" || !strings.Contains(err.Error(), "sql:call") {
			t.Errorf("%s: %v, want 42501 sql:call", q, err)
		}
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT calm_pl(0) + calm_rec(3)").Scan(&n); err != nil || n != 15 {
		t.Fatalf("read-only bodies: %d %v", n, err)
	}
	if got := h.upstreamState(t); got != untouched {
		t.Fatalf("upstream changed: %s", got)
	}
}
