package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// tokenFor issues a token with a lifetime for an agent on pg.
func (h *harness) tokenFor(agent string, ttl time.Duration, scopes ...identity.Scope) (string, identity.Claims) {
	h.t.Helper()
	tok, c, err := h.gw.Identity.Issue(context.Background(), identity.IssueRequest{Subject: agent, Actor: "alice@example.com",
		Connections: []string{"pg"}, Scopes: scopes, TTL: ttl})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok, c
}

// revokeViaAPI revokes a token as an administrator does over the REST API.
func (h *harness) revokeViaAPI(jti string) {
	h.t.Helper()
	adminTok, _, err := h.gw.Identity.Issue(context.Background(), identity.IssueRequest{Kind: identity.KindUser, Subject: "admin@example.com", Scopes: []identity.Scope{identity.ScopeAdmin}})
	if err != nil {
		h.t.Fatal(err)
	}
	var api string
	for _, l := range h.gw.Listening {
		if a, ok := strings.CutPrefix(l, "api "); ok {
			api = a
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+api+"/v1/tokens/"+jti+"/revoke", strings.NewReader(`{"reason":"test"}`))
	req.Header.Set("Authorization", "Bearer "+adminTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("POST revoke: %s", resp.Status)
	}
}

// waitEnded waits, without sending anything, for the gateway to end the
// session, and returns the FATAL it sent and when it arrived.
func waitEnded(t *testing.T, c *pgx.Conn, within time.Duration) (*pgconn.PgError, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	err := c.PgConn().WaitForNotification(ctx)
	at := time.Now()
	pe := pgErr(err)
	if pe == nil {
		t.Fatalf("waiting for the session to end: %v", err)
	}
	if pe.Severity != "FATAL" || pe.Code != "57P01" {
		t.Fatalf("session end: %s %s %q, want FATAL 57P01", pe.Severity, pe.Code, pe.Message)
	}
	return pe, at
}

// auditHas waits for an audit event of kind for the session whose token
// is jti, and returns it.
func (h *harness) auditHas(kind, jti string) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, err := h.gw.Admin.TailAudit(context.Background(), 200)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, raw := range evs {
			var e map[string]any
			json.Unmarshal(raw, &e)
			if e["kind"] == kind && e["token_id"] == jti {
				return e
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no %s event for token %s", kind, jti)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRevokeEndsOpenSession: a session opened with a token that is then
// revoked is ended, idle or not, with a FATAL that says so: at once for a
// revoke through the API, within identity.revocation_refresh (1 s) for
// one by the CLI, which reaches the gateway through the store. Another
// session is unaffected. On main nothing rechecked an open session's
// token, so the revoked session kept working.
func TestRevokeEndsOpenSession(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	seed(h)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		revoke func(jti string)
		within time.Duration
	}{
		{"api", h.revokeViaAPI, 500 * time.Millisecond},
		{"cli", func(jti string) {
			if code := h.gatehouseCLI("token", "revoke", jti, "--reason", "test"); code != 0 {
				t.Fatalf("gatehouse token revoke: exit %d", code)
			}
		}, 2500 * time.Millisecond}, // one refresh (1 s) and the CLI's own start-up
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, c := h.tokenFor("victim-"+tc.name, time.Hour, identity.ScopeRead)
			victim := connect(t, h.dsn(tok))
			bystander := connect(t, h.dsn(h.token("bystander-"+tc.name, "read")))
			var n int
			if err := victim.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			tc.revoke(c.ID)
			pe, at := waitEnded(t, victim, 10*time.Second)
			if pe.Message != "gatehouse: the session's token was revoked" {
				t.Fatalf("FATAL message %q", pe.Message)
			}
			t.Logf("the idle session ended %v after the revoke", at.Sub(start))
			if d := at.Sub(start); d > tc.within {
				t.Errorf("the idle session ended %v after the revoke, want within %v", d, tc.within)
			}
			if _, err := victim.Exec(ctx, "SELECT 1"); err == nil {
				t.Fatal("the revoked session still runs statements")
			}
			if err := bystander.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
				t.Fatalf("a session whose token holds: %v", err)
			}
			if e := h.auditHas("session.revoked", c.ID); e["reason"] != "token revoked" || e["session"] == "" {
				t.Fatalf("session.revoked event = %v", e)
			}
			if e := h.auditHas("session.end", c.ID); !strings.Contains(fmt.Sprint(e["reason"]), "revoked") {
				t.Fatalf("session.end event = %v", e)
			}
		})
	}
}

// TestRevokedNextStatementDoesNotRun: a statement sent right after the
// revoke (through the API: the gateway knows at once) does not run, and
// the client learns why: a new statement (Query, Parse) and a statement
// prepared before the revoke and executed again (Bind only), which no
// policy decision sees again.
func TestRevokedNextStatementDoesNotRun(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	seed(h)
	ctx := context.Background()
	db, err := sql.Open("pgx", h.upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, tc := range []struct {
		name string
		run  func(c *pgx.Conn, id int) error
	}{
		{"simple query", func(c *pgx.Conn, id int) error {
			_, err := c.Exec(ctx, fmt.Sprintf("INSERT INTO audit_me VALUES (%d)", id), pgx.QueryExecModeSimpleProtocol)
			return err
		}},
		{"new prepared statement", func(c *pgx.Conn, id int) error {
			_, err := c.Exec(ctx, "INSERT INTO audit_me SELECT $1::int", id)
			return err
		}},
		{"statement prepared before the revoke", func(c *pgx.Conn, id int) error {
			_, err := c.Exec(ctx, "ins", id)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, c := h.tokenFor(fmt.Sprintf("writer-%d", i), time.Hour, identity.ScopeWrite)
			conn := connect(t, h.dsn(tok))
			if _, err := conn.Prepare(ctx, "ins", "INSERT INTO audit_me VALUES ($1)"); err != nil {
				t.Fatal(err)
			}
			before, after := 100+2*i, 101+2*i
			if err := tc.run(conn, before); err != nil {
				t.Fatal(err)
			}
			h.revokeViaAPI(c.ID)
			err := tc.run(conn, after)
			if err == nil {
				t.Fatal("a statement ran after its token was revoked")
			}
			// The FATAL may arrive before the statement is written (the
			// idle watch) or answer it: either way it names the revoke,
			// unless the socket was already gone when pgx wrote.
			if pe := pgErr(err); pe != nil && (pe.Code != "57P01" || !strings.Contains(pe.Message, "revoked")) {
				t.Fatalf("statement after revoke: %v", err)
			}
			var n int
			if err := db.QueryRow("SELECT count(*) FROM audit_me WHERE id = $1", after).Scan(&n); err != nil || n != 0 {
				t.Fatalf("rows inserted after the revoke: %d (%v)", n, err)
			}
		})
	}
}

// TestExpiryEndsIdleSession: a session opened with a 3 s token ends at
// exp plus the clock skew (1 s here) even though it sends nothing, with a
// FATAL naming the expiry; a session whose token is still valid goes on.
// On main such a session worked indefinitely.
func TestExpiryEndsIdleSession(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "identity: {clock_skew: 1s}\n"})
	seed(h)
	ctx := context.Background()
	tok, c := h.tokenFor("short-lived", 3*time.Second, identity.ScopeRead)
	short := connect(t, h.dsn(tok))
	long := connect(t, h.dsn(h.token("long-lived", "read")))
	var n int
	if err := short.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatal(err)
	}
	pe, at := waitEnded(t, short, 15*time.Second)
	want := "gatehouse: the session's token expired at " + c.ExpiresAt.UTC().Format(time.RFC3339) + "; reconnect with a new token"
	if pe.Message != want {
		t.Fatalf("FATAL message %q, want %q", pe.Message, want)
	}
	deadline := c.ExpiresAt.Add(time.Second)
	t.Logf("ended %v after exp + skew", at.Sub(deadline))
	if at.Before(deadline) {
		t.Fatalf("ended %v before exp + skew", deadline.Sub(at))
	}
	if late := at.Sub(deadline); late > time.Second {
		t.Errorf("ended %v after exp + skew", late)
	}
	if err := long.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatalf("a session whose token is valid: %v", err)
	}
	if e := h.auditHas("session.expired", c.ID); !strings.HasPrefix(fmt.Sprint(e["reason"]), "token expired at ") {
		t.Fatalf("session.expired event = %v", e)
	}
}

// TestExpiryCancelsRunningStatement: a statement still running when the
// token expires is cancelled upstream, not left to run (and commit) after
// the gateway closes the connection; PostgreSQL does not notice a closed
// client socket while it executes.
func TestExpiryCancelsRunningStatement(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "identity: {clock_skew: 1s}\n"})
	tok, c := h.tokenFor("sleeper", 2*time.Second, identity.ScopeRead)
	conn := connect(t, h.dsn(tok))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, "SELECT pg_sleep(60)")
	pe := pgErr(err)
	if pe == nil || pe.Code != "57P01" || !strings.Contains(pe.Message, "expired") {
		t.Fatalf("long statement at expiry: %v", err)
	}
	t.Logf("the statement ended %v after exp + skew", time.Since(c.ExpiresAt.Add(time.Second)))
	if late := time.Since(c.ExpiresAt.Add(time.Second)); late > 3*time.Second {
		t.Errorf("the statement ran %v past exp + skew", late)
	}
	db, err := sql.Open("pgx", h.upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query = 'SELECT pg_sleep(60)' AND state = 'active'", h.db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the statement still runs upstream after its session ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRevokeWhileHeldForApproval: a statement waiting for a human's
// approval stops waiting when its token is revoked; approving it later
// runs nothing.
func TestRevokeWhileHeldForApproval(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "approvals: {timeout: 30s}\n"})
	h.exec(`CREATE TABLE t (id int)`)
	tok, c := h.tokenFor("migrator", time.Hour, identity.ScopeDDL)
	conn := connect(t, h.dsn(tok))
	done := make(chan error, 1)
	go func() { _, err := conn.Exec(context.Background(), "ALTER TABLE t ADD COLUMN held int"); done <- err }()
	a := h.pending(t)
	start := time.Now()
	h.revokeViaAPI(c.ID)
	select {
	case err := <-done:
		if pe := pgErr(err); pe == nil || pe.Code != "57P01" || !strings.Contains(pe.Message, "revoked") {
			t.Fatalf("held statement after revoke: %v", err)
		}
		t.Logf("cut off %v after the revoke", time.Since(start))
		if d := time.Since(start); d > time.Second {
			t.Errorf("the held statement was cut off %v after the revoke", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held statement still waits after its token was revoked")
	}
	if code := h.gatehouseCLI("approvals", "approve", a.ID); code != 0 {
		t.Fatalf("approvals approve: exit %d", code)
	}
	time.Sleep(500 * time.Millisecond)
	db, err := sql.Open("pgx", h.upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'held'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the held ALTER ran after its token was revoked (%d, %v)", n, err)
	}
}

// TestPsqlShowsTokenExpiry: psql, idle at its prompt when the token
// expires, prints the FATAL with its reason at the next command, as it does
// for a backend that pg_terminate_backend ended.
func TestPsqlShowsTokenExpiry(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "identity: {clock_skew: 1s}\n"})
	tok, c := h.tokenFor("psql-user", 2*time.Second, identity.ScopeRead)
	cmd := exec.Command("psql", h.dsn(tok), "-X", "-At")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, "SELECT 'before';\n")
	time.Sleep(time.Until(c.ExpiresAt.Add(1500 * time.Millisecond)))
	io.WriteString(in, "SELECT 'after';\n")
	in.Close()
	cmd.Wait()
	got := out.String()
	if !strings.Contains(got, "before") || strings.Contains(got, "\nafter") ||
		!strings.Contains(got, "FATAL:  gatehouse: the session's token expired at "+c.ExpiresAt.UTC().Format(time.RFC3339)+"; reconnect with a new token") {
		t.Fatalf("psql:\n%s", got)
	}
}
