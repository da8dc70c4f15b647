package postgres_test

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// ddlTokenFor issues a ddl token for agent acting for human on pg.
func (h *harness) ddlTokenFor(agent, human string) string {
	return h.tokenScoped(agent, human, identity.ScopeDDL)
}

func (h *harness) tokenScoped(agent, human string, scopes ...identity.Scope) string {
	h.t.Helper()
	tok, _, err := h.gw.Identity.Issue(context.Background(), identity.IssueRequest{Kind: identity.KindAgent, Subject: agent,
		Actor: human, Connections: []string{"pg"}, Scopes: scopes})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// pendingIDs lists the ids of the approvals pending now.
func (h *harness) pendingIDs(t *testing.T) []string {
	t.Helper()
	as, err := h.gw.Approvals.List(context.Background(), approval.Pending)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return ids
}

// rawSession opens a hand-driven session through the gateway for token;
// the connection closes when the test ends.
func (h *harness) rawSession(t *testing.T, token string) (*rawClient, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", h.pgAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rc := pgconnFrontend(conn)
	if err := rc.startup(h.db, token); err != nil {
		t.Fatal(err)
	}
	return rc, conn
}

// approveAndLeave sends sql for token (with the extended protocol when
// extended, else as a simple query), waits until it is held, disconnects,
// and has an administrator approve it: an approved approval nothing has
// used yet, as a client that retries after its approval leaves behind.
func (h *harness) approveAndLeave(t *testing.T, token, sql string, extended bool) *approval.Approval {
	t.Helper()
	before := h.pendingIDs(t)
	rc, conn := h.rawSession(t, token)
	if extended {
		// Nothing after the Bind: with more bytes buffered the gateway
		// does not see the client go.
		rc.fe.Send(&pgproto3.Parse{Query: sql})
		rc.fe.Send(&pgproto3.Bind{})
	} else {
		rc.fe.Send(&pgproto3.Query{String: sql})
	}
	if err := rc.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	a := h.pending(t, before...)
	conn.Close()
	h.sessionEnded(t, conn.LocalAddr().String())
	if code := h.gatehouseCLI("approvals", "approve", a.ID); code != 0 {
		t.Fatalf("approvals approve exit %d", code)
	}
	got, err := h.gw.Approvals.Get(context.Background(), a.ID)
	if err != nil || got.Status != approval.Approved {
		t.Fatalf("approval after approve: %+v %v", got, err)
	}
	return got
}

// sessionEnded waits until the gateway has ended the session of the client
// at source.
func (h *harness) sessionEnded(t *testing.T, source string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ss, err := h.gw.Admin.ListSessions(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.Source == source && !s.End.IsZero() {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the session from %s has not ended", source)
}

// waitStatus waits until approval id has the status.
func (h *harness) waitStatus(t *testing.T, id, status string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if a, err := h.gw.Approvals.Get(context.Background(), id); err == nil && a.Status == status {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("approval %s is not %s", id, status)
}

// mustBeHeld runs sql for token and requires the gateway to hold it for a
// new approval, which it returns after denying it (so the statement fails).
// A statement that runs instead fails the test: it got through on some
// other approval.
func (h *harness) mustBeHeld(t *testing.T, token, sql string, extended bool) *approval.Approval {
	t.Helper()
	before := h.pendingIDs(t)
	c := connect(t, h.dsn(token))
	done := make(chan error, 1)
	go func() {
		var err error
		if extended {
			_, err = c.PgConn().ExecParams(context.Background(), sql, nil, nil, nil, nil).Close()
		} else {
			_, err = c.PgConn().Exec(context.Background(), sql).ReadAll()
		}
		done <- err
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("%s ran without a new approval (err %v)", sql, err)
		default:
		}
		as, err := h.gw.Approvals.List(context.Background(), approval.Pending)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if slices.Contains(before, a.ID) {
				continue
			}
			if code := h.gatehouseCLI("approvals", "deny", a.ID, "--reason", "test"); code != 0 {
				t.Fatalf("approvals deny exit %d", code)
			}
			if err := <-done; errCode(err) != "42501" {
				t.Fatalf("denied statement: %v", err)
			}
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was neither held nor run", sql)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestApprovalBindsExactOperation: an approval covers one exact operation
// by one agent for one human (issue 10's attack review).
func TestApprovalBindsExactOperation(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "approvals: {timeout: 30s}\n"})
	h.exec(`CREATE TABLE t (id int)`, `INSERT INTO t VALUES (1), (2)`)
	ctx := context.Background()
	up := connect(t, h.upstream)
	body := func(fn string) string {
		var src string
		if err := up.QueryRow(ctx, "SELECT coalesce(max(prosrc), '') FROM pg_proc WHERE proname = $1", fn).Scan(&src); err != nil {
			t.Fatal(err)
		}
		return src
	}

	// The literal in a Parse's text is what the function does: approving
	// one body must not let another through, and the reviewer must see it.
	t.Run("a Parse's literals bind it", func(t *testing.T) {
		const safe = `CREATE OR REPLACE FUNCTION gh_f() RETURNS void LANGUAGE sql AS 'SELECT 1'`
		const evil = `CREATE OR REPLACE FUNCTION gh_f() RETURNS void LANGUAGE sql AS 'DELETE FROM t'`
		tok := h.ddlTokenFor("migrator", "alice@example.com")
		a := h.approveAndLeave(t, tok, safe, true)
		held := h.mustBeHeld(t, tok, evil, true)
		if src := body("gh_f"); src != "" {
			t.Fatalf("gh_f was created with body %q", src)
		}
		// What reviewers read (approvals show, the API, webhooks) is the
		// text that would have run.
		shown, _ := json.Marshal(held)
		if !strings.Contains(string(shown), "DELETE FROM t") {
			t.Fatalf("the reviewer does not see the exact text: %s", shown)
		}
		// The audit log keeps the normalised statement only.
		evs, err := h.gw.Admin.TailAudit(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if strings.Contains(string(ev), "DELETE FROM t") {
				t.Fatalf("an audit event carries the literal: %s", ev)
			}
		}
		// The approved operation itself still runs at once.
		c := connect(t, h.dsn(tok))
		if _, err := c.PgConn().ExecParams(ctx, safe, nil, nil, nil, nil).Close(); err != nil {
			t.Fatalf("the approved statement: %v", err)
		}
		if src := body("gh_f"); src != "SELECT 1" {
			t.Fatalf("gh_f body = %q", src)
		}
		if got, _ := h.gw.Approvals.Get(ctx, a.ID); got.Status != approval.Used {
			t.Fatalf("approval status %s after its statement ran", got.Status)
		}
	})

	// While a statement waits, the engine must not forward other bytes
	// than those approved: a client that sends its next message during
	// the wait refills the read buffer the held message was read from.
	t.Run("bytes sent while held do not change it", func(t *testing.T) {
		for _, extended := range []bool{false, true} {
			name := map[bool]string{false: "simple", true: "extended"}[extended]
			t.Run(name, func(t *testing.T) {
				safe := "ALTER TABLE t ADD COLUMN safe_" + name + " int"
				evil := "ALTER TABLE t ADD COLUMN evil_" + name + " int"
				before := h.pendingIDs(t)
				rc, _ := h.rawSession(t, h.ddlTokenFor("migrator", "alice@example.com"))
				flush := func(msgs ...pgproto3.FrontendMessage) {
					for _, m := range msgs {
						rc.fe.Send(m)
					}
					if err := rc.fe.Flush(); err != nil {
						t.Fatal(err)
					}
					// Let the gateway read it all: what follows starts a
					// fresh read.
					time.Sleep(200 * time.Millisecond)
				}
				if extended {
					// The evil statement is prepared (a held statement is
					// held at Bind), then the safe one is bound, alone.
					flush(&pgproto3.Parse{Name: "e", Query: evil}, &pgproto3.Parse{Name: "s", Query: safe}, &pgproto3.Flush{})
					flush(&pgproto3.Bind{PreparedStatement: "s"})
				} else {
					flush(&pgproto3.Query{String: safe})
				}
				a := h.pending(t, before...)
				if extended {
					// A Bind body of the same length for "e", wrapped in a
					// CopyData (which PostgreSQL ignores outside COPY),
					// then an Execute.
					bindE, _ := (&pgproto3.Bind{PreparedStatement: "e"}).Encode(nil)
					flush(&pgproto3.CopyData{Data: bindE[5:]}, &pgproto3.Execute{}, &pgproto3.Sync{})
				} else {
					flush(&pgproto3.Query{String: evil})
				}
				if code := h.gatehouseCLI("approvals", "approve", a.ID); code != 0 {
					t.Fatalf("approvals approve exit %d", code)
				}
				// Used: the gateway forwards the held message now. The
				// evil Query that follows is held in turn: deny it.
				h.waitStatus(t, a.ID, approval.Used)
				if !extended {
					next := h.pending(t, append(before, a.ID)...)
					if code := h.gatehouseCLI("approvals", "deny", next.ID, "--reason", "test"); code != 0 {
						t.Fatalf("approvals deny exit %d", code)
					}
				}
				time.Sleep(500 * time.Millisecond)
				var cols []string
				rows, err := up.Query(ctx, "SELECT column_name FROM information_schema.columns WHERE table_name = 't'")
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var c string
					rows.Scan(&c)
					cols = append(cols, c)
				}
				if slices.Contains(cols, "evil_"+name) || !slices.Contains(cols, "safe_"+name) {
					t.Fatalf("the bytes sent during the hold ran, not the approved statement: columns %v", cols)
				}
			})
		}
	})

	// An approval for (agent A, alice) is not one for (A, bob) nor (B, alice).
	t.Run("bound to the agent and the human", func(t *testing.T) {
		for _, extended := range []bool{false, true} {
			name := map[bool]string{false: "simple", true: "extended"}[extended]
			t.Run(name, func(t *testing.T) {
				sql := "ALTER TABLE t ADD COLUMN pair_" + name + " int"
				aliceA := h.ddlTokenFor("agent-a", "alice@example.com")
				a := h.approveAndLeave(t, aliceA, sql, extended)
				if held := h.mustBeHeld(t, h.ddlTokenFor("agent-a", "bob@example.com"), sql, extended); held.OnBehalfOf != "bob@example.com" {
					t.Fatalf("held for %q", held.OnBehalfOf)
				}
				if held := h.mustBeHeld(t, h.ddlTokenFor("agent-b", "alice@example.com"), sql, extended); held.Principal != `Agent::"agent-b"` {
					t.Fatalf("held for %s", held.Principal)
				}
				c := connect(t, h.dsn(aliceA))
				var err error
				if extended {
					_, err = c.PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Close()
				} else {
					_, err = c.PgConn().Exec(ctx, sql).ReadAll()
				}
				if err != nil {
					t.Fatalf("the approved pair: %v", err)
				}
				if got, _ := h.gw.Approvals.Get(ctx, a.ID); got.Status != approval.Used {
					t.Fatalf("approval status %s after its statement ran", got.Status)
				}
			})
		}
	})
}

// TestApprovalBindsParameters: a held statement's parameters bind its
// approval, each with its format and declared type; a reuse window covers
// repeats of the same values by the same agent for the same human only.
func TestApprovalBindsParameters(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "approvals: {timeout: 30s}\n", extraPolicy: `
@id("param-bot-updates-after-approval")
@approval("admins")
@approval_window("1h")
permit (principal == Agent::"param-bot", action == Action::"sql:update", resource);
`})
	h.exec(`CREATE TABLE p (id int, v int)`, `INSERT INTO p VALUES (1, 0)`)
	ctx := context.Background()
	const sql = "UPDATE p SET v = $1 WHERE id = 1"
	// Read scope: no other permit lets it update.
	tok := h.tokenScoped("param-bot", "alice@example.com", identity.ScopeRead)
	c := connect(t, h.dsn(tok))
	exec := func(c *pgx.Conn, value []byte, format int16) error {
		_, err := c.PgConn().ExecParams(ctx, sql, [][]byte{value}, []uint32{23}, []int16{format}, nil).Close()
		return err
	}
	// First time: held; the reviewer sees the value; approved, it runs.
	before := h.pendingIDs(t)
	done := make(chan error, 1)
	go func() { done <- exec(c, []byte("1234"), 0) }()
	a := h.pending(t, before...)
	if a.Operation == nil || len(a.Operation.Params) != 1 || string(a.Operation.Params[0].Value) != "1234" ||
		a.Operation.Params[0].Format != "text" || a.Operation.Params[0].Type != "23" || a.Operation.Text != sql {
		t.Fatalf("the reviewer sees %+v", a.Operation)
	}
	if code := h.gatehouseCLI("approvals", "approve", a.ID); code != 0 {
		t.Fatalf("approvals approve exit %d", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("approved statement: %v", err)
	}
	// Within the window the same values run at once, for the same pair.
	if err := exec(c, []byte("1234"), 0); err != nil {
		t.Fatalf("repeat within the window: %v", err)
	}
	// Other values, the same bytes in binary (825373492 as int4), or the
	// same values for another human: each is held.
	for name, run := range map[string]func(*pgx.Conn) error{
		"another value":            func(c *pgx.Conn) error { return exec(c, []byte("1235"), 0) },
		"the same bytes in binary": func(c *pgx.Conn) error { return exec(c, []byte("1234"), 1) },
		"the same values for bob": func(c *pgx.Conn) error {
			return exec(connect(t, h.dsn(h.tokenScoped("param-bot", "bob@example.com", identity.ScopeRead))), []byte("1234"), 0)
		},
		"the same values, no type": func(c *pgx.Conn) error {
			_, err := c.PgConn().ExecParams(ctx, sql, [][]byte{[]byte("1234")}, nil, nil, nil).Close()
			return err
		},
		"the same values, other cased": func(c *pgx.Conn) error {
			_, err := c.PgConn().ExecParams(ctx, "update p SET v = $1 WHERE id = 1", [][]byte{[]byte("1234")}, []uint32{23}, nil, nil).Close()
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			before := h.pendingIDs(t)
			c := connect(t, h.dsn(tok))
			done := make(chan error, 1)
			go func() { done <- run(c) }()
			deadline := time.Now().Add(15 * time.Second)
			for {
				select {
				case err := <-done:
					t.Fatalf("ran on the approval for other values (err %v)", err)
				default:
				}
				if ids := h.pendingIDs(t); len(ids) > len(before) {
					for _, id := range ids {
						if !slices.Contains(before, id) {
							h.gatehouseCLI("approvals", "deny", id, "--reason", "test")
						}
					}
					if err := <-done; errCode(err) != "42501" {
						t.Fatalf("denied: %v", err)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("neither held nor run")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	var v int
	if err := connect(t, h.upstream).QueryRow(ctx, "SELECT v FROM p WHERE id = 1").Scan(&v); err != nil || v != 1234 {
		t.Fatalf("v = %d (%v)", v, err)
	}
}

// TestHeldStatementNameReused: a held statement's name cannot be made to
// mean something the reviewer did not see, by parsing the name again
// (upstream refuses a name in use), parsing it as a denied statement, or
// closing it in a batch the upstream skips after an error. An engine that
// tracked Parse and Close as sent, not as the upstream confirmed them, ran
// the first statement on the approval of the second, or with none.
func TestHeldStatementNameReused(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "approvals: {timeout: 30s}\n"})
	h.exec(`CREATE TABLE t (id int)`)
	ctx := context.Background()
	up := connect(t, h.upstream)
	for _, tc := range []struct {
		name string
		// between is sent after Parse "s" of the held statement and a
		// Sync, before Bind "s".
		between []pgproto3.FrontendMessage
	}{
		{"parsed again", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s", Query: "ALTER TABLE t ADD COLUMN other_parsed_again int"}, &pgproto3.Sync{}}},
		{"parsed again as a denied statement", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s", Query: "DROP TABLE t"}, &pgproto3.Sync{}}},
		{"closed after an error", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "x", Query: "DROP TABLE t"}, &pgproto3.Close{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := "unapproved_" + strings.ReplaceAll(tc.name, " ", "_")
			rc, _ := h.rawSession(t, h.ddlTokenFor("migrator", "alice@example.com"))
			rc.fe.Send(&pgproto3.Parse{Name: "s", Query: "ALTER TABLE t ADD COLUMN " + col + " int"})
			rc.fe.Send(&pgproto3.Sync{})
			for _, m := range tc.between {
				rc.fe.Send(m)
			}
			rc.fe.Send(&pgproto3.Bind{PreparedStatement: "s"})
			rc.fe.Send(&pgproto3.Execute{})
			rc.fe.Send(&pgproto3.Sync{})
			rc.fe.Flush()
			// Whatever is held meanwhile is approved: the column of the
			// first Parse must still never appear, since nobody saw it.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				as, _ := h.gw.Approvals.List(ctx, approval.Pending)
				for _, a := range as {
					if !strings.Contains(a.Operation.Text, col) {
						h.gatehouseCLI("approvals", "approve", a.ID)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			var n int
			up.QueryRow(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = $1", col).Scan(&n)
			if n != 0 {
				t.Fatalf("%s ran without its approval", col)
			}
		})
	}
}

// TestHeldBindValuesCannotChange: the values a reviewer approved are the
// values that run, whatever the client sends while the Bind waits (its next
// bytes refill the read buffer the Bind was read from).
func TestHeldBindValuesCannotChange(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "approvals: {timeout: 30s}\n", extraPolicy: `
@id("param-bot-updates-after-approval")
@approval("admins")
permit (principal == Agent::"param-bot", action == Action::"sql:update", resource);
`})
	h.exec(`CREATE TABLE p (id int, v int)`, `INSERT INTO p VALUES (1, 0)`)
	ctx := context.Background()
	rc, _ := h.rawSession(t, h.tokenScoped("param-bot", "alice@example.com", identity.ScopeRead))
	flush := func(msgs ...pgproto3.FrontendMessage) {
		for _, m := range msgs {
			rc.fe.Send(m)
		}
		if err := rc.fe.Flush(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // read it all: what follows starts a fresh read
	}
	flush(&pgproto3.Parse{Name: "s", Query: "UPDATE p SET v = $1 WHERE id = 1"}, &pgproto3.Flush{})
	before := h.pendingIDs(t)
	flush(&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("1111")}})
	a := h.pending(t, before...)
	// The same Bind with other values, in a CopyData (ignored by
	// PostgreSQL outside COPY), then an Execute.
	evil, _ := (&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("6666")}}).Encode(nil)
	flush(&pgproto3.CopyData{Data: evil[5:]}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if code := h.gatehouseCLI("approvals", "approve", a.ID); code != 0 {
		t.Fatalf("approvals approve exit %d", code)
	}
	h.waitStatus(t, a.ID, approval.Used)
	up := connect(t, h.upstream)
	var v int
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := up.QueryRow(ctx, "SELECT v FROM p WHERE id = 1").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v != 1111 {
		t.Fatalf("v = %d after approving 1111", v)
	}
}
