package postgres_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// endedSession waits for the recorded session of principal to end.
func endedSession(t *testing.T, h *harness, principal string) store.RecSession {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ss, err := h.gw.Admin.ListSessions(context.Background(), 20)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.Principal == principal && !s.End.IsZero() {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended session of %s in %+v", principal, ss)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplayShowsTheClientsCode: a denied statement is recorded with the
// SQLSTATE the client got (42501), not the upstream's 42601 for the
// substitute that carried the denial (issue 12: replay showed 42601).
func TestReplayShowsTheClientsCode(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	seed(h)
	c := connect(t, h.dsn(h.token("truthful", "read")))
	_, err := c.Exec(context.Background(), "DELETE FROM users WHERE id = 1", pgx.QueryExecModeSimpleProtocol)
	if pe := pgErr(err); pe == nil || pe.Code != "42501" {
		t.Fatalf("DELETE with read scope: %v", err)
	}
	c.Close(context.Background())
	s := endedSession(t, h, `Agent::"truthful"`)
	st, err := h.gw.Admin.SessionStatements(context.Background(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Decision != "deny" || st[0].Error != "42501" {
		t.Fatalf("recorded statements = %+v, want the DELETE denied with 42501", st)
	}
	if s.Protocol != "postgres" || s.EndReason != "client terminated" {
		t.Fatalf("session = %+v", s)
	}
}

// TestInProcessSessionIsMCPs: the MCP tools' SQL sessions reach the engine
// in process (ServeInternal). They were recorded and audited as protocol
// postgres, ending "gateway shutdown" while the gateway ran; they are
// MCP's, and end when their call does.
func TestInProcessSessionIsMCPs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	seed(h)
	cfg, err := pgconn.ParseConfig("host=gatehouse port=5432 sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password, cfg.Database = "pg", h.token("mcp-caller", "read"), ""
	cfg.Fallbacks, cfg.RuntimeParams = nil, map[string]string{}
	cfg.LookupFunc = func(context.Context, string) ([]string, error) { return []string{"gatehouse"}, nil }
	call, endCall := context.WithCancel(context.Background())
	cfg.DialFunc = func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go h.gw.Postgres.ServeInternal(call, server)
		return client, nil
	}
	conn, err := pgconn.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "SELECT count(*) FROM users").ReadAll(); err != nil {
		t.Fatal(err)
	}
	endCall() // the tool call is over, as the MCP engine's is
	conn.Close(context.Background())
	s := endedSession(t, h, `Agent::"mcp-caller"`)
	if s.Protocol != "mcp" || s.EndReason != "client terminated (the MCP call ended)" {
		t.Fatalf("session = protocol %q, end %q; want mcp, ended by its call", s.Protocol, s.EndReason)
	}
}
