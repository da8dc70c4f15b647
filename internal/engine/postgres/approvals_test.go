package postgres_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/cli"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pending waits for a pending approval to appear and returns it.
func (h *harness) pending(t *testing.T, not ...string) *approval.Approval {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		as, err := h.gw.Approvals.List(context.Background(), approval.Pending)
		if err != nil {
			t.Fatal(err)
		}
	next:
		for _, a := range as {
			for _, n := range not {
				if a.ID == n {
					continue next
				}
			}
			return a
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no pending approval appeared")
	return nil
}

// gatehouseCLI runs an admin command on the gateway host, as an
// administrator would.
func (h *harness) gatehouseCLI(args ...string) int {
	return cli.Main(context.Background(), append([]string{"--config", h.cfgPath}, args...))
}

type webhookSink struct {
	mu       sync.Mutex
	payloads []approval.Payload
	bad      int
}

func TestApprovals(t *testing.T) {
	secret := "whsec-test-secret"
	sink := &webhookSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if !approval.VerifySignature([]byte(secret), r.Header.Get("X-Gatehouse-Timestamp"), r.Header.Get("X-Gatehouse-Signature"), body) {
			sink.bad++
			http.Error(w, "bad signature", 401)
			return
		}
		var p approval.Payload
		json.Unmarshal(body, &p)
		sink.payloads = append(sink.payloads, p)
	}))
	defer srv.Close()
	t.Setenv("GH_TEST_WEBHOOK_SECRET", secret)
	h := newHarness(t, harnessOpts{extraConfig: `
approvals:
  timeout: 3s
  webhooks:
    - {url: "` + srv.URL + `", format: generic, secret: "env:GH_TEST_WEBHOOK_SECRET"}
`})
	h.exec(`CREATE TABLE t (id int)`)
	ctx := context.Background()

	t.Run("psql ALTER runs only after CLI approval", func(t *testing.T) {
		cmd := exec.Command("psql", h.dsn(h.token("migrator", "ddl")), "-v", "ON_ERROR_STOP=1", "-c", "ALTER TABLE t ADD COLUMN a int")
		out := make(chan string, 1)
		go func() {
			b, err := cmd.CombinedOutput()
			if err != nil {
				b = append(b, []byte(" ERR "+err.Error())...)
			}
			out <- string(b)
		}()
		a := h.pending(t)
		if a.Group != "admins" || !strings.Contains(a.Statement, "ALTER TABLE t ADD COLUMN") {
			t.Fatalf("approval = %+v", a)
		}
		select {
		case o := <-out:
			t.Fatalf("psql finished before approval: %s", o)
		case <-time.After(300 * time.Millisecond):
		}
		if code := h.gatehouseCLI("approvals", "approve", a.ID); code != 0 {
			t.Fatalf("approvals approve exit %d", code)
		}
		select {
		case o := <-out:
			if !strings.Contains(o, "ALTER TABLE") || strings.Contains(o, "ERR") || !strings.Contains(o, "approval required: "+a.ID) {
				t.Fatalf("psql: %s", o)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("psql still held after approval")
		}
		// Single use: the same statement again is held again.
		c := connect(t, h.dsn(h.token("migrator", "ddl")))
		done := make(chan error, 1)
		go func() { _, err := c.Exec(ctx, "ALTER TABLE t ADD COLUMN a2 int"); done <- err }()
		b := h.pending(t, a.ID)
		// Approving X does not let Y through: deny Y.
		if _, err := h.gw.Approvals.Deny(ctx, b.ID, approval.Reviewer{ID: "carol", Type: "User", Groups: []string{"admins"}}, "not today"); err != nil {
			t.Fatal(err)
		}
		err := <-done
		if pe := pgErr(err); pe == nil || pe.Code != "42501" || !strings.Contains(pe.Message, "denied by carol: not today") {
			t.Fatalf("denied statement: %v", err)
		}
		var one int
		if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("session unusable after denial: %v", err)
		}
	})

	t.Run("pgx prepared statement held at Bind, timeout", func(t *testing.T) {
		c := connect(t, h.dsn(h.token("migrator", "ddl")))
		start := time.Now()
		_, err := c.Exec(ctx, "CREATE INDEX t_id ON t (id)")
		pe := pgErr(err)
		if pe == nil || pe.Code != "42501" || !strings.Contains(pe.Message, "expired") {
			t.Fatalf("timed-out statement: %v", err)
		}
		if time.Since(start) < 2*time.Second {
			t.Fatalf("returned after %v, before the 3s timeout", time.Since(start))
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_id'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("index exists (%d, %v): a held statement ran", n, err)
		}
	})

	t.Run("self approval refused", func(t *testing.T) {
		c := connect(t, h.dsn(h.token("migrator", "ddl"))) // acts for alice@example.com
		done := make(chan error, 1)
		go func() {
			_, err := c.Exec(ctx, "ALTER TABLE t ADD COLUMN b int", pgx.QueryExecModeSimpleProtocol)
			done <- err
		}()
		a := h.pending(t)
		if _, err := h.gw.Approvals.Approve(ctx, a.ID, approval.Reviewer{ID: "alice@example.com", Type: "User", Groups: []string{"admins"}}, ""); err == nil {
			t.Fatal("alice approved a statement made on her behalf")
		}
		if _, err := h.gw.Approvals.Approve(ctx, a.ID, approval.Reviewer{ID: "mallory", Type: "User", Groups: []string{"devs"}}, ""); err == nil {
			t.Fatal("a non-member approved")
		}
		<-done // times out
	})

	t.Run("webhook payloads are signed", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			sink.mu.Lock()
			n, bad := len(sink.payloads), sink.bad
			var first approval.Payload
			if n > 0 {
				first = sink.payloads[0]
			}
			sink.mu.Unlock()
			if bad > 0 {
				t.Fatalf("%d webhook deliveries had bad signatures", bad)
			}
			if n >= 3 {
				if first.Event != "approval.requested" || first.Approval == nil || !strings.Contains(first.Approve, "gatehouse approvals approve apr_") {
					t.Fatalf("payload = %+v", first)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("webhook got %d payloads", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestAccessGrant(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.exec(`CREATE TABLE notes (id int, body text)`)
	ctx := context.Background()
	tok := h.token("helper", "read")
	c := connect(t, h.dsn(tok))
	if _, err := c.Exec(ctx, "INSERT INTO notes VALUES (1, 'x')"); errCode(err) != "42501" {
		t.Fatalf("write before grant: %v", err)
	}
	if code := h.gatehouseCLI("access", "request", "--connection", "pg", "--role", "write", "--for", "3s", "--reason", "fix notes", "--principal", `Agent::"helper"`); code != 0 {
		t.Fatalf("access request exit %d", code)
	}
	a := h.pending(t)
	if a.Kind != approval.KindGrant {
		t.Fatalf("approval kind %q", a.Kind)
	}
	if code := h.gatehouseCLI("approvals", "approve", a.ID); code != 0 {
		t.Fatalf("approve exit %d", code)
	}
	var err error
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err = c.Exec(ctx, "INSERT INTO notes VALUES (2, 'granted')")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("write with an approved grant: %v", err)
	}
	time.Sleep(3500 * time.Millisecond)
	if _, err := c.Exec(ctx, "INSERT INTO notes VALUES (3, 'late')"); errCode(err) != "42501" {
		t.Fatalf("write after the grant expired: %v", err)
	}
	_ = identity.KindAgent
	_ = pgconn.PgError{}
}

// TestHeldStatementClientGone ends a session whose client disconnects while
// its statement waits for approval; the approval stays pending.
func TestHeldStatementClientGone(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.exec(`CREATE TABLE t (id int)`)
	cmd := exec.Command("psql", h.dsn(h.token("migrator", "ddl")), "-c", "ALTER TABLE t ADD COLUMN gone int")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := h.pending(t)
	cmd.Process.Kill()
	cmd.Wait()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ss, err := h.gw.Admin.ListSessions(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		ended := false
		for _, s := range ss {
			if s.Principal == `Agent::"migrator"` && !s.End.IsZero() {
				ended = true
			}
		}
		if ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session of a disconnected client is still waiting")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, err := h.gw.Approvals.Get(ctx, a.ID); err != nil || got.Status != approval.Pending {
		t.Fatalf("approval after the client left: %+v %v", got, err)
	}
}

// TestHeldStatementOverTLS holds and then runs a statement on a TLS
// session: watching for a disconnect while holding must leave the TLS
// stream usable.
func TestHeldStatementOverTLS(t *testing.T) {
	h := newHarness(t, harnessOpts{noLoopback: true})
	h.exec(`CREATE TABLE t (id int)`)
	c := connect(t, h.dsn(h.token("migrator", "ddl"), "sslmode", "require"))
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "ALTER TABLE t ADD COLUMN tls int", pgx.QueryExecModeSimpleProtocol)
		done <- err
	}()
	a := h.pending(t)
	time.Sleep(200 * time.Millisecond)
	if _, err := h.gw.Approvals.Approve(ctx, a.ID, approval.Reviewer{ID: "carol", Type: "User", Groups: []string{"admins"}}, ""); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("approved statement over TLS: %v", err)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("TLS session after the hold: %v", err)
	}
}
