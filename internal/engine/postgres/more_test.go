package postgres_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPgbench(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	// Initialise directly (pgbench -i runs DDL and COPY), then drive the
	// read-only and the default TPC-B-like scripts through the gateway.
	init := exec.Command("pgbench", "-i", "-s", "1", "-q", h.upstream)
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v: %s", err, out)
	}
	for _, tc := range []struct {
		name string
		args []string
		tok  string
	}{
		{"select only, simple protocol", []string{"-S", "-M", "simple"}, h.token("bench", "read")},
		{"select only, prepared", []string{"-S", "-M", "prepared"}, h.token("bench", "read")},
		{"tpcb-like, extended", []string{"-M", "extended"}, h.token("bench", "write")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-n", "-c", "4", "-j", "2", "-t", "200"}, tc.args...)
			args = append(args, h.dsn(tc.tok))
			out, err := exec.Command("pgbench", args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "number of transactions actually processed: 800/800") {
				t.Fatalf("pgbench %v: %v\n%s", tc.args, err, out)
			}
			if strings.Contains(string(out), "number of failed transactions: 0") == false && strings.Contains(string(out), "failed") {
				t.Fatalf("pgbench reported failures:\n%s", out)
			}
		})
	}
}

func TestRecordingAndReplay(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	seed(h)
	c := connect(t, h.dsn(h.token("recorded", "read")))
	ctx := context.Background()
	var n int
	c.QueryRow(ctx, "SELECT count(*) FROM users WHERE email = $1", "user5@example.com").Scan(&n)
	c.Exec(ctx, "DELETE FROM users WHERE id = 1")
	c.Close(ctx)
	var sessionID string
	deadline := time.Now().Add(10 * time.Second)
	for sessionID == "" {
		ss, err := h.gw.Admin.ListSessions(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.Principal == `Agent::"recorded"` && !s.End.IsZero() && s.Statements >= 2 {
				sessionID = s.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended session with statements: %+v", ss)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := h.gw.Admin.SessionStatements(ctx, sessionID)
	if err != nil {
		t.Fatal(err)
	}
	var sawSelect, sawDeny bool
	for _, s := range st {
		if strings.Contains(s.Statement, "count(*)") && s.Decision == "allow" && s.Rows == 1 {
			sawSelect = true
			if len(s.Params) != 1 || strings.Contains(s.Params[0], "user5@example.com") {
				t.Fatalf("params not recorded masked: %q", s.Params)
			}
		}
		if strings.Contains(s.Statement, "DELETE") && s.Decision == "deny" {
			sawDeny = true
		}
		if strings.Contains(s.Statement, "user5") {
			t.Fatalf("recorded statement carries a literal: %q", s.Statement)
		}
	}
	if !sawSelect || !sawDeny {
		t.Fatalf("recording = %+v", st)
	}
}

func TestSyncAuditFailsClosed(t *testing.T) {
	h := newHarness(t, harnessOpts{syncAudit: true, brokenStore: true})
	h.exec(`CREATE TABLE t (id int)`)
	c := connect(t, h.dsn(h.token("bot", "write")))
	ctx := context.Background()
	if _, err := c.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// The audit store goes away: statements must be refused, not run.
	h.gw.Store.Close()
	_, err := c.Exec(ctx, "INSERT INTO t VALUES (2)", pgx.QueryExecModeSimpleProtocol)
	if pe := pgErr(err); pe == nil || pe.Code != "57P03" || !strings.Contains(pe.Message, "audit") {
		t.Fatalf("insert with the audit store down: %v", err)
	}
	var n int
	direct, err := pgx.Connect(ctx, h.upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	if err := direct.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d (%v): a statement ran unlogged", n, err)
	}
}

func TestBinaryColumnRuleIsNulled(t *testing.T) {
	rules := `
detectors: {default: redact}
columns:
  - column: "*.accounts.balance"
    strategy: partial
`
	h := newHarness(t, harnessOpts{maskRules: rules})
	h.exec(`CREATE TABLE accounts (id int, balance bigint, owner text)`, `INSERT INTO accounts VALUES (1, 987654321, 'x')`)
	c := connect(t, h.dsn(h.token("bot", "read")))
	ctx := context.Background()
	// pgx reads bigint in binary format: a rule that cannot rewrite binary
	// values in place nulls them rather than pass them through.
	var bal *int64
	if err := c.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = $1", 1).Scan(&bal); err != nil {
		t.Fatal(err)
	}
	if bal != nil {
		t.Fatalf("binary balance passed through: %d", *bal)
	}
	// In text format the partial strategy applies.
	var s string
	if err := c.QueryRow(ctx, "SELECT balance::text FROM accounts WHERE id = 1", pgx.QueryExecModeSimpleProtocol).Scan(&s); err != nil {
		t.Fatal(err)
	}
	_ = s
}
