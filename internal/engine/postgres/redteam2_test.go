package postgres_test

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Red-team review, second round (issue 10): a hostile agent against a
// superuser upstream account, after the first round's fixes.
//
// Every test whose name ends in Bypass FAILS on the code it was written
// against: it demonstrates a bypass, and its assertions state what the
// gateway should have done. Each checks what the upstream did (a direct
// connection), not only what the client was told.

// TestRedTeam2BuiltinAttributeNotationBypass (critical: server files,
// other sessions, hidden statements). PostgreSQL reads (x).f as f(x) for
// any one-argument function f, built-ins included, and for any type of x,
// not only composites. The analysis records the field name as a possible
// call (Attributes) but the catalog resolves it only against user
// functions, never pg_catalog's; and since no FuncCall is in the tree,
// nothing sets risky_function either. A read-scoped agent reads
// /etc/passwd with pg_read_file, kills another session with
// pg_terminate_backend, takes session advisory locks, and runs a query
// the gateway never sees (ts_stat runs the text it is given) against a
// table policy forbids. A read-only transaction stops none of them.
func TestRedTeam2BuiltinAttributeNotationBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, extraPolicy: hiddenTablePolicy})
	attackSetup(h)
	h.exec(`CREATE SCHEMA hidden`, `CREATE TABLE hidden.secret (id int, v text)`, `INSERT INTO hidden.secret VALUES (1, 'payroll-ledger-figures')`)
	ctx := context.Background()
	c := connect(t, h.dsn(h.token("reader", "read")))
	// Control: written as calls, each is refused.
	for _, q := range []string{
		"SELECT pg_read_file('/etc/passwd')",
		"SELECT pg_terminate_backend(1)",
		"SELECT pg_advisory_lock(424242)",
		"SELECT ts_stat('SELECT to_tsvector(v) FROM hidden.secret')",
	} {
		if _, err := c.Exec(ctx, q); errCode(err) != "42501" {
			t.Fatalf("control %s: %v, want 42501", q, err)
		}
	}

	t.Run("pg_read_file", func(t *testing.T) {
		var got string
		err := c.QueryRow(ctx, "SELECT ('/etc/passwd'::text).pg_read_file").Scan(&got)
		if strings.Contains(got, "root:") {
			t.Errorf("read scope read the server's /etc/passwd through (text).pg_read_file: %q", got[:min(len(got), 60)])
		} else if errCode(err) != "42501" {
			t.Errorf("(text).pg_read_file: %v, want 42501", err)
		}
	})

	t.Run("pg_terminate_backend", func(t *testing.T) {
		victim, err := sql.Open("pgx", h.upstream)
		if err != nil {
			t.Fatal(err)
		}
		defer victim.Close()
		victim.SetMaxOpenConns(1)
		var pid int
		if err := victim.QueryRow("SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(ctx, "SELECT ("+strconv.Itoa(pid)+").pg_terminate_backend", pgx.QueryExecModeSimpleProtocol)
		alive := 1
		var aliveErr error
		for deadline := time.Now().Add(2 * time.Second); alive > 0 && aliveErr == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			aliveErr = h.directQueryRow("SELECT count(*) FROM pg_stat_activity WHERE pid = "+strconv.Itoa(pid), &alive)
		}
		if aliveErr == nil && alive == 0 {
			t.Errorf("read scope terminated another session (pid %d) through (int).pg_terminate_backend (err %v)", pid, err)
		} else if errCode(err) != "42501" {
			t.Errorf("(int).pg_terminate_backend: %v, want 42501", err)
		}
	})

	t.Run("pg_advisory_lock", func(t *testing.T) {
		r := connect(t, h.dsn(h.token("reader", "read")))
		_, err := r.Exec(ctx, "SELECT (424242::bigint).pg_advisory_lock")
		if h.advisoryHeld(t, 424242) {
			t.Errorf("read scope took a session advisory lock through (bigint).pg_advisory_lock (err %v)", err)
		} else if errCode(err) != "42501" {
			t.Errorf("(bigint).pg_advisory_lock: %v, want 42501", err)
		}
	})

	t.Run("ts_stat runs a query the gateway never saw", func(t *testing.T) {
		var got string
		err := c.QueryRow(ctx, "SELECT string_agg(w.word, ' ') FROM (SELECT (x).* FROM (SELECT (('SELECT to_tsvector(''simple'', v) FROM hidden.secret')::text).ts_stat AS x) s) w").Scan(&got)
		if strings.Contains(got, "payroll") {
			t.Errorf("read scope read hidden.secret, which policy forbids, through a query inside (text).ts_stat: %q", got)
		} else if errCode(err) != "42501" {
			t.Errorf("(text).ts_stat: %v, want 42501", err)
		}
	})
}

// TestRedTeam2AggregateSupportBodyBypass (high: read scope runs code that
// is not a read). A user aggregate's volatility is taken as the worst of
// its support functions' pg_proc.provolatile, but their bodies are never
// read: the body analysis applies to functions called by name only. A
// STABLE PL/pgSQL transition function that takes an advisory lock (or
// calls set_config, pg_terminate_backend, a writer) is refused when
// called directly and runs when the aggregate calls it.
func TestRedTeam2AggregateSupportBodyBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	h.exec(
		`CREATE FUNCTION st_sfunc(s int, v int) RETURNS int STABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_lock(2001); RETURN coalesce(s, 0) + v; END $$`,
		`CREATE AGGREGATE st_sum(int) (sfunc = st_sfunc, stype = int)`,
	)
	ctx := context.Background()
	c := connect(t, h.dsn(h.token("reader", "read")))
	if _, err := c.Exec(ctx, "SELECT st_sfunc(1, 2)"); errCode(err) != "42501" {
		t.Fatalf("control: the stable transition function called directly: %v, want 42501 (its body is not a read)", err)
	}
	r := connect(t, h.dsn(h.token("reader", "read")))
	_, err := r.Exec(ctx, "SELECT st_sum(id) FROM t")
	if h.advisoryHeld(t, 2001) {
		t.Errorf("read scope ran the transition function's advisory lock through the aggregate st_sum (err %v)", err)
	} else if errCode(err) != "42501" {
		t.Errorf("SELECT st_sum(id): %v, want 42501", err)
	}
}

// TestRedTeam2DomainCheckWithoutCastBypass (high: read scope runs code
// that is not a read). A domain's CHECK runs whenever a value becomes of
// that domain. The catalog counts it only for an explicit cast to the
// domain by name; but it also runs for a domain over that domain, for a
// composite type with a field of the domain, for the argument and the
// result of a function declared with the domain, and for a PL/pgSQL
// variable of the domain. Each function here is STABLE with a body that
// reads, so it is taken for a read; lock_ok takes an advisory lock. Cast
// functions likewise are counted by their target type's name only, not for
// a cast to a domain over that type.
func TestRedTeam2DomainCheckWithoutCastBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	h.exec(
		`CREATE FUNCTION lock_ok(v int) RETURNS bool VOLATILE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_lock(1006); RETURN true; END $$`,
		`CREATE DOMAIN checked AS int CHECK (lock_ok(VALUE))`,
		`CREATE DOMAIN checked2 AS checked`,
		`CREATE TYPE wrap AS (v checked)`,
		`CREATE FUNCTION takes_checked(x checked) RETURNS int STABLE LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$`,
		`CREATE FUNCTION returns_checked() RETURNS checked STABLE LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$`,
		`CREATE FUNCTION checked_var() RETURNS int STABLE LANGUAGE plpgsql AS $$ DECLARE x checked := 1; BEGIN RETURN x; END $$`,
		// A cast function runs for a cast to a domain over its target.
		`CREATE TYPE tk AS (id int)`,
		`CREATE FUNCTION mk_tk(i int) RETURNS tk VOLATILE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_lock(1006); RETURN ROW(i)::tk; END $$`,
		`CREATE CAST (int AS tk) WITH FUNCTION mk_tk(int)`,
		`CREATE DOMAIN tk_d AS tk`,
	)
	ctx := context.Background()
	c := connect(t, h.dsn(h.token("reader", "read")))
	for _, q := range []string{"SELECT 1::checked", "SELECT 1::tk"} {
		if _, err := c.Exec(ctx, q); errCode(err) != "42501" {
			t.Fatalf("control: %s: %v, want 42501", q, err)
		}
	}
	c.Close(ctx)
	for _, q := range []string{
		"SELECT 1::checked2",
		"SELECT ROW(1)::wrap",
		"SELECT takes_checked(1)",
		"SELECT returns_checked()",
		"SELECT checked_var()",
		"SELECT 1::tk_d",
	} {
		r := connect(t, h.dsn(h.token("reader", "read")))
		_, err := r.Exec(ctx, q)
		held := h.advisoryHeld(t, 1006)
		r.Close(ctx)
		if held {
			t.Errorf("read scope %q ran a domain CHECK or cast function (an advisory lock) (err %v)", q, err)
		} else if errCode(err) != "42501" {
			t.Errorf("read scope %q: %v, want 42501", q, err)
		}
		for deadline := time.Now().Add(5 * time.Second); h.advisoryHeld(t, 1006) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestRedTeam2WallUnsettledBatchBypass (critical: read scope deletes
// every row). A read-only session's batch waits, before its first Query,
// Parse, Bind or Execute, until the server has answered everything sent
// before it, so that a default_transaction_read_only turned off by a
// function is reported (and the session ended) before a new transaction
// starts; and in a batch only an Execute after COMMIT is refused. Three
// ways around it: a batch that starts with a Close or a Describe is marked
// begun by that message, and the Parse, Bind and Execute after it never
// wait; and a simple Query after COMMIT in the same batch is forwarded.
// Each runs in a new transaction, read-write; the gateway ends the session
// when the report arrives, after the server has committed.
//
// The two functions are declared read-only by the administrator
// (read_only_functions), which the docs say the wall still holds against:
// "ends the session if the server reports the setting off without the
// gateway asking (a function called set_config)". Any function the
// catalog misjudges does the same (TestRedTeam2ReadScopeDeletesThroughAggregatesBypass).
func TestRedTeam2WallUnsettledBatchBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, connExtra: "    read_only_functions: [public.rw_on, public.evil_delete]\n"})
	attackSetup(h)

	// Control: the Parse that starts the next batch waits, sees the
	// report and the session ends before it is forwarded.
	r := h.raw(t, h.token("reader", "read"))
	r.send(&pgproto3.Query{String: "SELECT rw_on()"},
		&pgproto3.Parse{Query: "SELECT evil_delete()"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	res := r.untilClosed(t)
	if got := h.upstreamState(t); got != untouched {
		t.Fatalf("control: %s=> %s", res, got)
	}

	for _, tc := range []struct {
		name string
		prep []pgproto3.FrontendMessage // sent first, in a batch of its own
		msgs []pgproto3.FrontendMessage
	}{
		{"Close before the next batch's Parse", nil, []pgproto3.FrontendMessage{
			&pgproto3.Query{String: "SELECT rw_on()"},
			&pgproto3.Close{ObjectType: 'S', Name: "nothing"},
			&pgproto3.Parse{Query: "SELECT evil_delete()"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		{"Describe before the next batch's Parse", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "d", Query: "SELECT 1"}, &pgproto3.Sync{}}, []pgproto3.FrontendMessage{
			&pgproto3.Query{String: "SELECT rw_on()"},
			&pgproto3.Describe{ObjectType: 'S', Name: "d"},
			&pgproto3.Parse{Query: "SELECT evil_delete()"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		// Only an Execute after COMMIT is refused in the same batch; a
		// simple Query there is forwarded, and starts a transaction.
		{"Query after COMMIT in the same batch", nil, []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "SELECT rw_on()"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "COMMIT"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Query{String: "SELECT evil_delete()"}, &pgproto3.Sync{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The server must read the batch before the gateway, which
			// ends the session on the report, closes the upstream: it
			// nearly always does; an attacker retries.
			for range 5 {
				r := h.raw(t, h.token("reader", "read"))
				if tc.prep != nil {
					r.send(tc.prep...)
					r.untilReady(t, 1)
				}
				r.send(tc.msgs...)
				res := r.untilClosed(t)
				if got := h.upstreamState(t); got != untouched {
					t.Errorf("read scope:\n%s=> upstream changed: %s, want %s", res, got, untouched)
					h.restoreT()
					return
				}
			}
		})
	}
}

// directQueryRow runs q on the upstream directly and scans one row.
func (h *harness) directQueryRow(q string, dest ...any) error {
	db, err := sql.Open("pgx", h.upstream)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.QueryRow(q).Scan(dest...)
}

// TestRedTeam2ReadScopeDeletesThroughAggregatesBypass (critical: read
// scope deletes every row, with nothing declared read-only). The two
// bypasses above chained: an aggregate whose STABLE transition function
// turns default_transaction_read_only off (the catalog takes the
// aggregate for a read), then, behind a Close so that nothing waits for
// the server's report, an aggregate whose STABLE transition function
// calls the writer evil_delete(), in a transaction that started
// read-write.
func TestRedTeam2ReadScopeDeletesThroughAggregatesBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	h.exec(
		`CREATE FUNCTION rw_sfunc(s int, v int) RETURNS int STABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('default_transaction_read_only', 'off', false); RETURN 0; END $$`,
		`CREATE AGGREGATE rw_agg(int) (sfunc = rw_sfunc, stype = int)`,
		`CREATE FUNCTION del_sfunc(s int, v int) RETURNS int STABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM evil_delete(); RETURN 0; END $$`,
		`CREATE AGGREGATE del_agg(int) (sfunc = del_sfunc, stype = int)`,
	)
	for range 5 { // an attacker retries: see TestRedTeam2WallUnsettledBatchBypass
		r := h.raw(t, h.token("reader", "read"))
		r.send(&pgproto3.Query{String: "SELECT rw_agg(1)"},
			&pgproto3.Close{ObjectType: 'S', Name: "nothing"},
			&pgproto3.Parse{Query: "SELECT del_agg(1)"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		res := r.untilClosed(t)
		if got := h.upstreamState(t); got != untouched {
			t.Errorf("read scope, two aggregates:\n%s=> upstream changed: %s, want %s", res, got, untouched)
			return
		}
	}
}

// TestRedTeam2CatalogStaleAfterTransactionalDDLBypass (medium: read scope
// calls a function that is no longer a read, with nothing outside the
// gateway). The function catalog is marked stale when a schema-changing
// statement completes, and reread by the next decision, on a connection
// of its own: inside the changer's open transaction that reread still
// sees the old definition, and COMMIT (a transaction statement) marks
// nothing stale. The COMMIT's own decision rereads the catalog, so the
// old definition is cached as fresh for the next 5 seconds, while the new
// one is live. Migrations run DDL in transactions, so this is the normal
// case, not a race.
func TestRedTeam2CatalogStaleAfterTransactionalDDLBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, extraPolicy: `
@id("rt2-dba")
permit (principal in Group::"dba", action in [Action::"connect", Action::"sql"], resource);`})
	attackSetup(h)
	ctx := context.Background()
	reader := connect(t, h.dsn(h.token("reader", "read")))
	var n int
	if err := reader.QueryRow(ctx, "SELECT harmless(1)").Scan(&n); err != nil {
		t.Fatalf("control: harmless() is immutable and reads: %v", err)
	}
	dba := connect(t, h.dsn(h.userToken("dana", "dba")))
	for _, q := range []string{
		"BEGIN",
		"CREATE OR REPLACE FUNCTION harmless(x int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_lock(3001); RETURN x + 1; END $$",
		"COMMIT",
	} {
		if _, err := dba.Exec(ctx, q); err != nil {
			t.Fatalf("dba %s: %v", q, err)
		}
	}
	_, err := reader.Exec(ctx, "SELECT harmless(1)")
	if h.advisoryHeld(t, 3001) {
		t.Errorf("read scope called harmless() right after a committed change made it volatile (err %v): the catalog kept the old definition", err)
	} else if errCode(err) != "42501" {
		t.Errorf("read scope SELECT harmless() after it became volatile: %v, want 42501", err)
	}
}

// TestRedTeam2ColumnRulesEscapedBypass (high: values a column rule masks
// reach the agent). Column rules apply to a result column only when the
// server's RowDescription names its table and attribute, which it does
// only for a bare column reference. Any expression over the column (||,
// lower(), a scalar subquery), COPY … TO STDOUT (scanned by the content
// detectors only), and an error message quoting the value all return it
// unmasked. Here users.name is redacted by a rule and its values are
// nothing the detectors know.
func TestRedTeam2ColumnRulesEscapedBypass(t *testing.T) {
	t.Skip("masking through expressions is lineage, issue 11 (docs/security.md lists it as not stopped yet)")
	h := newHarness(t, harnessOpts{maskRules: `
detectors:
  default: redact
columns:
  - column: "*.users.name"
    strategy: redact
`})
	seed(h)
	ctx := context.Background()
	c := connect(t, h.dsn(h.token("reader", "read")))
	var name string
	if err := c.QueryRow(ctx, "SELECT name FROM users WHERE id = 3").Scan(&name); err != nil || name == "user3" {
		t.Fatalf("control: SELECT name = %q, %v; want it redacted", name, err)
	}
	for _, q := range []string{
		"SELECT name || '' FROM users WHERE id = 3",
		"SELECT lower(name) FROM users WHERE id = 3",
		"SELECT (SELECT name FROM users WHERE id = 3)",
		"SELECT max(name) FROM users WHERE id = 3",
	} {
		var got string
		err := c.QueryRow(ctx, q).Scan(&got)
		if got == "user3" {
			t.Errorf("%s returned %q: the rule on users.name does not apply", q, got)
		} else if err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	var buf strings.Builder
	if _, err := c.PgConn().CopyTo(ctx, &buf, "COPY (SELECT name FROM users WHERE id = 3) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "user3") {
		t.Errorf("COPY (SELECT name …) TO STDOUT returned %q unmasked", buf.String())
	}
	_, err := c.Exec(ctx, "SELECT name::int FROM users WHERE id = 3")
	if pe := pgErr(err); pe != nil && strings.Contains(pe.Message, "user3") {
		t.Errorf("the error of a cast quotes the value: %q", pe.Message)
	}
}

// TestRedTeam2OtherSessionsQueryTextBypass (medium: other applications'
// statements, literals included, in every database). The first round
// forbade pg_stat_activity and made pg_stat_get_activity() risky; the
// per-backend functions behind the same data are STABLE and unlisted:
// pg_stat_get_backend_activity(pg_stat_get_backend_idset()) reads every
// backend's current query text. Write scope may also call the volatile
// functions behind the forbidden views (pg_show_all_file_settings() is
// pg_file_settings, pg_hba_file_rules() is pg_hba_file_rules).
func TestRedTeam2OtherSessionsQueryTextBypass(t *testing.T) {
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
	ctx := context.Background()
	c := connect(t, h.dsn(h.token("reader", "read")))
	var seen string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && !strings.Contains(seen, secret); time.Sleep(100 * time.Millisecond) {
		err := c.QueryRow(ctx, "SELECT coalesce(string_agg(pg_stat_get_backend_activity(b), ' | '), '') FROM pg_stat_get_backend_idset() b").Scan(&seen)
		if err != nil {
			if errCode(err) != "42501" {
				t.Fatal(err)
			}
			break
		}
	}
	if strings.Contains(seen, secret) {
		t.Errorf("read scope read another database's query text through pg_stat_get_backend_activity: %q", seen)
	}
	w := connect(t, h.dsn(h.token("writer", "write")))
	for _, q := range []string{
		"SELECT count(*) FROM pg_file_settings",
		"SELECT count(*) FROM pg_hba_file_rules",
	} {
		if _, err := w.Exec(ctx, q); errCode(err) != "42501" {
			t.Fatalf("control: write scope %s: %v, want 42501", q, err)
		}
	}
	for _, q := range []string{
		"SELECT count(*) FROM pg_show_all_file_settings()",
		"SELECT count(*) FROM pg_hba_file_rules()",
	} {
		var n int
		if err := w.QueryRow(ctx, q).Scan(&n); err == nil {
			t.Errorf("write scope %s read the forbidden view's rows (%d) through its function", q, n)
		}
	}
}

// TestRedTeam2CopyInSwallowsSyncBypass (high: masking off, and the
// response queue out of step). During COPY FROM STDIN the server ignores
// Flush and Sync (copyfromparse.c: libpq sends them without noticing the
// command was COPY), so a COPY started by an Execute swallows the batch's
// Sync, and the client must send another after CopyDone, as libpq does.
// The gateway queued an expectation for both Syncs; the server answers
// one. From then on every response is matched to the message before it:
// the BindComplete of the next batch pops the stale Sync, a row arrives
// with the previous portal's Execute at the head, and it is masked with
// that portal's description (an int4 in binary, not scanned): a
// write-scoped agent reads a card number in clear.
func TestRedTeam2CopyInSwallowsSyncBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{maskRules: `
detectors:
  default: redact
`})
	seed(h)
	const card = "4111 1111 1111 1111"
	r := h.raw(t, h.token("writer", "write"))
	r.send(&pgproto3.Parse{Name: "a", Query: "SELECT 1::int4"}, &pgproto3.Describe{ObjectType: 'S', Name: "a"},
		&pgproto3.Parse{Name: "b", Query: "SELECT card FROM users WHERE id = 1"}, &pgproto3.Describe{ObjectType: 'S', Name: "b"},
		&pgproto3.Sync{})
	if res := r.untilReady(t, 1); strings.Contains(res, "ERROR") {
		t.Fatalf("prepare: %s", res)
	}
	exec := func() []string {
		r.send(&pgproto3.Bind{DestinationPortal: "pa", PreparedStatement: "a", ResultFormatCodes: []int16{1}}, &pgproto3.Execute{Portal: "pa"},
			&pgproto3.Bind{DestinationPortal: "pb", PreparedStatement: "b", ResultFormatCodes: []int16{1}}, &pgproto3.Execute{Portal: "pb"},
			&pgproto3.Sync{})
		return r.rows(t)
	}
	if got := exec(); strings.Contains(strings.Join(got, " "), card) {
		t.Fatalf("control: %q, want the card masked", got)
	}
	// COPY FROM STDIN through the extended protocol, as libpq runs it.
	r.send(&pgproto3.Parse{Query: "COPY audit_me FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	r.conn.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		m, err := r.fe.Receive()
		if err != nil {
			t.Fatalf("waiting for CopyInResponse: %v", err)
		}
		if _, ok := m.(*pgproto3.CopyInResponse); ok {
			break
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			t.Fatalf("COPY FROM STDIN: %s", e.Message)
		}
	}
	r.send(&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{})
	if res := r.untilReady(t, 1); strings.Contains(res, "ERROR") {
		t.Fatalf("copy: %s", res)
	}
	if got := exec(); strings.Contains(strings.Join(got, " "), card) {
		t.Errorf("after an extended-protocol COPY FROM STDIN the same batch returned %q: the card number is no longer masked", got)
	}
}

// TestRedTeam2NamesInAnotherDatabaseEncodingBypass (high where a database
// is not UTF-8: what ran differs from what was decided, audited and
// masked). The model keys statement names by their first 63 bytes in
// UTF-8, the client encoding the gateway pins. The server converts every
// name to the database's encoding first (pq_getmsgstring) and keys it
// there: in a LATIN1 database "é" is one byte, not two. Two names of 32
// "é" and a digit are 65 bytes in UTF-8, one name to the gateway (the same
// first 63 bytes), and two 33-byte names to the server. A Bind of the
// first is decided, audited and masked as the second's text (an int4 in
// binary, not scanned) while the server runs the first: the card number
// comes back in clear.
func TestRedTeam2NamesInAnotherDatabaseEncodingBypass(t *testing.T) {
	latin := "gh_rt2_latin1_" + randHex(4)
	h := newHarness(t, harnessOpts{superuser: true, maskRules: `
detectors:
  default: redact
`, connExtra: "    databases: [" + latin + "]\n"})
	u, _ := url.Parse(h.upstream)
	h.exec(`CREATE DATABASE ` + latin + ` ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`)
	t.Cleanup(func() { h.exec(`DROP DATABASE IF EXISTS ` + latin + ` WITH (FORCE)`) })
	u.Path = "/" + latin
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE users (id int PRIMARY KEY, card text)`,
		`INSERT INTO users VALUES (1, '4111 1111 1111 1111')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	conn, err := net.Dial("tcp", h.pgAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := pgconnFrontend(conn)
	if err := r.startup(latin, h.token("reader", "read")); err != nil {
		t.Fatal(err)
	}
	prefix := strings.Repeat("é", 32)
	first, second := prefix+"1", prefix+"2"
	r.send(&pgproto3.Parse{Name: first, Query: "SELECT card FROM users WHERE id = 1"}, &pgproto3.Sync{})
	if res := r.untilReady(t, 1); strings.Contains(res, "ERROR 42622") {
		return // refused: the gateway cannot key such a name as the server does (the fix)
	} else if strings.Contains(res, "ERROR") {
		t.Fatalf("first parse: %s", res)
	}
	r.send(&pgproto3.Parse{Name: second, Query: "SELECT 1::int4 AS n"}, &pgproto3.Describe{ObjectType: 'S', Name: second}, &pgproto3.Sync{})
	if res := r.untilReady(t, 1); strings.Contains(res, "ERROR") {
		t.Fatalf("second parse: %s", res)
	}
	r.send(&pgproto3.Bind{PreparedStatement: first, ResultFormatCodes: []int16{1}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := r.rows(t); strings.Contains(strings.Join(got, " "), "4111 1111 1111 1111") {
		t.Errorf("Bind of %q (decided and masked as %q's SELECT 1::int4) returned %q: the server ran the first statement", first, second, got)
	}
}

// TestRedTeam2PortalReplacedBySQLCursorBypass (high: masking off for read
// scope). Protocol portals and SQL cursors are one namespace. The
// engine keeps, per portal name, what its Bind described (an int4 in
// binary here) until a protocol Close or a new Bind; SQL CLOSE and
// DECLARE change the portal behind its back. A read-scoped agent binds
// portal pa to SELECT 1::int4, closes it in SQL, declares a cursor pa over
// the card numbers and executes pa through the protocol: the rows are
// masked (not at all) as the int4 the gateway remembers, and recorded as
// that statement.
func TestRedTeam2PortalReplacedBySQLCursorBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{maskRules: `
detectors:
  default: redact
`})
	seed(h)
	const card = "4111 1111 1111 1111"
	r := h.raw(t, h.token("reader", "read"))
	r.send(&pgproto3.Query{String: "BEGIN"})
	r.untilReady(t, 1)
	r.send(&pgproto3.Parse{Name: "a", Query: "SELECT 1::int4"}, &pgproto3.Describe{ObjectType: 'S', Name: "a"},
		&pgproto3.Bind{DestinationPortal: "pa", PreparedStatement: "a", ResultFormatCodes: []int16{1}}, &pgproto3.Sync{})
	if res := r.untilReady(t, 1); strings.Contains(res, "ERROR") {
		t.Fatalf("bind: %s", res)
	}
	// Control: a cursor of another name is masked.
	r.send(&pgproto3.Query{String: "DECLARE pc CURSOR FOR SELECT card FROM users WHERE id = 1"})
	r.untilReady(t, 1)
	r.send(&pgproto3.Execute{Portal: "pc"}, &pgproto3.Sync{})
	if got := r.rows(t); len(got) != 1 || strings.Contains(got[0], card) {
		t.Fatalf("control: cursor pc returned %q, want one masked value", got)
	}
	r.send(&pgproto3.Query{String: "CLOSE pa"})
	r.untilReady(t, 1)
	r.send(&pgproto3.Query{String: "DECLARE pa CURSOR FOR SELECT card FROM users WHERE id = 1"})
	if res := r.untilReady(t, 1); strings.Contains(res, "ERROR") {
		t.Fatalf("declare: %s", res)
	}
	r.send(&pgproto3.Execute{Portal: "pa"}, &pgproto3.Sync{})
	if got := r.rows(t); strings.Contains(strings.Join(got, " "), card) {
		t.Errorf("Execute of the cursor pa, declared over a closed protocol portal pa, returned %q: masked with the old portal's int4 description", got)
	}
}

// TestRedTeam2ErrorInternalQueryUnmaskedBypass (medium: masked values
// reach the agent). Errors and notices are masked in their message,
// detail, hint and context fields only. The internal-query field ('q')
// carries the text of a statement a function built and ran, data
// included: a write-scoped agent passes card numbers to a function that
// runs dynamic SQL (a common kind of helper), the statement fails, and the
// error quotes it in clear.
func TestRedTeam2ErrorInternalQueryUnmaskedBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{maskRules: `
detectors:
  default: redact
`})
	seed(h)
	h.exec(`CREATE FUNCTION count_where(cond text) RETURNS bigint LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN EXECUTE 'SELECT count(*) FROM users WHERE ' || cond INTO n; RETURN n; END $$`)
	c := connect(t, h.dsn(h.token("writer", "write")))
	_, err := c.Exec(context.Background(), "SELECT count_where(card) FROM users WHERE id = 1")
	pe := pgErr(err)
	if pe == nil {
		t.Fatalf("want an error, got %v", err)
	}
	all := strings.Join([]string{pe.Message, pe.Detail, pe.Hint, pe.Where, pe.InternalQuery}, " | ")
	if strings.Contains(all, "4111 1111 1111 1111") {
		t.Errorf("the error carries the card number in clear: %s", all)
	}
}

// TestRedTeam2WallLoweredForHeldParseBypass (medium, with a policy that
// holds writes for approval: rows deleted without any approval). The
// engine lowers a read-only session's wall for a statement policy allows
// to write, at its Parse, and raises it again only before a later
// statement that starts a batch. For a Parse whose Bind will wait for an
// approval it lowers it all the same: the rest of that batch runs in a
// read-write transaction, approved or not, and the held statement never
// needs to be bound. Here a read-scoped agent may UPDATE t once an admin
// approves; what runs read-write is a function the administrator declared
// read-only (any function the catalog misjudges does the same).
func TestRedTeam2WallLoweredForHeldParseBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true, connExtra: "    read_only_functions: [public.evil_delete]\n", extraPolicy: `
@id("rt2-update-with-approval")
@approval("admins")
permit (principal is Agent, action == Action::"sql:update", resource == Table::"pg/public.t");`})
	attackSetup(h)
	// Control: alone, the declared function is stopped by the wall.
	c := connect(t, h.dsn(h.token("reader", "read")))
	if _, err := c.Exec(context.Background(), "SELECT evil_delete()"); errCode(err) != "25006" {
		t.Fatalf("control: SELECT evil_delete(): %v, want 25006 from the read-only transaction", err)
	}
	r := h.raw(t, h.token("reader", "read"))
	r.send(&pgproto3.Parse{Name: "held", Query: "UPDATE t SET v = v WHERE id = 1"},
		&pgproto3.Parse{Query: "SELECT evil_delete()"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	res := r.untilReadyOrClosed(t)
	if got := h.upstreamState(t); got != untouched {
		t.Errorf("read scope, a held UPDATE parsed (never bound, never approved) then a read:\n%s=> upstream changed: %s, want %s", res, got, untouched)
	}
}

// TestRedTeam2CatalogLockWedgesEveryoneBypass (high availability: one
// write-scoped agent stalls every session on the database, other
// principals' included, and cuts read scope off). LOCK TABLE is sql:lock,
// which write scope has, and nothing stops it on a system catalog. With
// ACCESS EXCLUSIVE on pg_proc held in an open transaction, the function
// catalog (shared by every session of the database, reread every 5 s)
// cannot load: the loader waits its full 15 s holding the entry's lock,
// every other session's next statement waits behind it, and after the
// failed load every call is classified sql:call, so read scope's
// SELECT now() is refused.
func TestRedTeam2CatalogLockWedgesEveryoneBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{superuser: true})
	attackSetup(h)
	ctx := context.Background()
	bystander := connect(t, h.dsn(h.token("bystander", "read")))
	var now time.Time
	if err := bystander.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		t.Fatalf("control: %v", err)
	}
	w := connect(t, h.dsn(h.token("writer", "write")))
	if _, err := w.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	_, err := w.Exec(ctx, "LOCK TABLE pg_catalog.pg_proc IN ACCESS EXCLUSIVE MODE")
	if errCode(err) == "42501" {
		return // refused: the fix
	}
	if err != nil {
		t.Fatalf("LOCK: %v", err)
	}
	defer w.Close(ctx) // ends the session, and the lock with it
	time.Sleep(catalogWait)
	start := time.Now()
	err = bystander.QueryRow(ctx, "SELECT now()").Scan(&now)
	took := time.Since(start)
	if took > 3*time.Second || err != nil {
		t.Errorf("another principal's SELECT now() took %s (err %v) while a write-scoped agent held a lock on pg_proc", took.Round(time.Millisecond), err)
	}
}

// TestRedTeam2ParseSlotsStarvedBypass (medium availability: one
// read-scoped agent denies every other principal statements of 64 KiB and
// more). The gateway parses such texts two at a time, gateway-wide, and
// refuses one that has waited 10 s for a slot. Nothing is per principal,
// and a 400 KB chain of ANDs (under every limit, a shape of its own each
// time so the cache never answers) takes a slot for seconds: an agent with
// 48 sessions sending them (policy then refuses each, so the upstream does
// nothing) keeps both slots busy and a queue in front of them: another
// principal's 68 KB statement (a bulk INSERT, a long report) waits about
// 10 s, and is often refused when it has.
func TestRedTeam2ParseSlotsStarvedBypass(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	var stop atomic.Bool
	var wg sync.WaitGroup
	defer func() { stop.Store(true); wg.Wait() }()
	for i := range 48 {
		c := connect(t, h.dsn(h.token("hog", "read")))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; !stop.Load(); j++ {
				q := "SELECT lo_unlink(1) FROM t WHERE " + strings.Repeat("a = 1 AND ", 40000) + "c" + strconv.Itoa(i) + "_" + strconv.Itoa(j) + " = 1"
				c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol)
			}
		}()
	}
	time.Sleep(4 * time.Second) // the hogs queue for the slots, served in order
	by := connect(t, h.dsn(h.token("bystander", "read")))
	start := time.Now()
	_, err := by.Exec(ctx, "SELECT 1 WHERE 1 IN (1"+strings.Repeat(",1", 34000)+")", pgx.QueryExecModeSimpleProtocol)
	if took := time.Since(start); err != nil || took > 5*time.Second {
		t.Errorf("another principal's 68 KB statement (parsed in milliseconds) waited %s behind one agent's statements: %v", took.Round(time.Millisecond), err)
	}
}
