package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// testPipeline is a pipeline of real parts: a SQLite store, the audit log
// on it, the identity service and the starter policies.
type testPipeline struct {
	*gateway.Pipeline
	store store.Store
}

func newPipeline(tb testing.TB, idCfg identity.Config) *testPipeline {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		tb.Fatal(err)
	}
	signer, verifier, err := audit.LoadOrCreateKeys(filepath.Join(dir, "keys"))
	if err != nil {
		tb.Fatal(err)
	}
	log, err := audit.Open(ctx, audit.Options{Store: st, Signer: signer, Verifier: verifier, QueueSize: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		log.Close(context.Background())
		st.Close()
	})
	id, err := identity.New(ctx, idCfg, filepath.Join(dir, "keys"), st, identity.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	policies := filepath.Join(dir, "policies")
	if err := os.CopyFS(policies, policy.StarterFS()); err != nil {
		tb.Fatal(err)
	}
	pol, err := policy.NewEngine(policies)
	if err != nil {
		tb.Fatal(err)
	}
	return &testPipeline{Pipeline: &gateway.Pipeline{Identity: id, Policy: pol, Audit: log, Logger: slog.New(slog.DiscardHandler)}, store: st}
}

// token issues a read token for agent on connection pg.
func (p *testPipeline) token(tb testing.TB, agent string, ttl time.Duration) (string, identity.Claims) {
	tb.Helper()
	tok, c, err := p.Identity.Issue(context.Background(), identity.IssueRequest{Subject: agent, Actor: "alice@example.com",
		Connections: []string{"pg"}, Scopes: []identity.Scope{identity.ScopeRead}, TTL: ttl})
	if err != nil {
		tb.Fatal(err)
	}
	return tok, c
}

// selectReq is what the PostgreSQL engine asks for SELECT * FROM t.
func selectReq(key any) gateway.Request {
	return gateway.Request{
		Accesses: []gateway.Access{{Action: "sql:select", ResourceType: policy.Table, ResourceID: "pg/public.t"}},
		Context:  map[string]any{"class": "select", "tables": []string{"public.t"}, "columns": []string{"public.t.id"}, "flags": []string{}},
		CacheKey: key,
	}
}

// events returns the audit log's events of kind, once they are durable.
func (p *testPipeline) events(tb testing.TB, kind string) []audit.Event {
	tb.Helper()
	ctx := context.Background()
	var out []audit.Event
	err := p.store.ScanAudit(ctx, 0, func(r store.AuditRecord) error {
		var e audit.Event
		if err := json.Unmarshal(r.Body, &e); err != nil {
			return err
		}
		if e.Kind == kind {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
