package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "engine/mcp", "app", "cli", "api", "engine/postgres")
}

// argumentPolicy shows policy reading a tool call's arguments.
const argumentPolicy = `
@id("no-secret-table-via-mcp")
@reason("the secret table is off limits to MCP tools")
forbid (principal is Agent, action == Action::"mcp:call", resource)
when { context.arguments.sql like "*secret_table*" };
`

// toolsSuite runs the same checks over any transport: an MCP client sees
// the same tools and the same governance whichever way it connects.
func toolsSuite(t *testing.T, h *harness, cs *mcp.ClientSession) {
	ctx := context.Background()
	t.Run("list tools", func(t *testing.T) {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		slices.Sort(names)
		if want := []string{"approval_status", "describe", "list_connections", "query"}; !slices.Equal(names, want) {
			t.Fatalf("tools = %v, want %v", names, want)
		}
		for _, tool := range res.Tools {
			if tool.Name != "query" {
				continue
			}
			schema, _ := json.Marshal(tool.InputSchema)
			for _, want := range []string{`"connection"`, `"sql"`, `"max_rows"`, `"required":["connection","sql"]`} {
				if !strings.Contains(string(schema), want) {
					t.Errorf("query input schema lacks %s: %s", want, schema)
				}
			}
		}
	})
	t.Run("list connections", func(t *testing.T) {
		res := call(t, cs, "list_connections", nil)
		var out struct {
			Connections []struct{ Name, Type, Database string }
		}
		structured(t, res, &out)
		if res.IsError || len(out.Connections) != 1 || out.Connections[0].Name != "pg" || out.Connections[0].Type != "postgres" {
			t.Fatalf("list_connections = %+v (%s)", out, text(res))
		}
	})
	t.Run("describe marks masked columns", func(t *testing.T) {
		res := call(t, cs, "describe", map[string]any{"connection": "pg", "table": "users"})
		if res.IsError {
			t.Fatalf("describe: %s", text(res))
		}
		var out struct {
			Tables []struct {
				Schema, Name, Kind string
				Columns            []struct{ Name, Type, Masked string }
			}
		}
		structured(t, res, &out)
		if len(out.Tables) != 1 || out.Tables[0].Name != "users" || out.Tables[0].Kind != "table" {
			t.Fatalf("describe tables = %+v", out.Tables)
		}
		masked := map[string]string{}
		for _, c := range out.Tables[0].Columns {
			masked[c.Name] = c.Masked
		}
		want := map[string]string{"id": "", "name": "redact", "email": "scan", "card": "partial", "note": "scan"}
		for col, m := range want {
			if masked[col] != m {
				t.Errorf("column %s masked %q, want %q (all: %v)", col, masked[col], m, masked)
			}
		}
		if !strings.Contains(text(res), "card") || !strings.Contains(text(res), "partial") {
			t.Errorf("describe text lacks the masked marking:\n%s", text(res))
		}
	})
	t.Run("allowed query", func(t *testing.T) {
		res := call(t, cs, "query", map[string]any{"connection": "pg", "sql": "SELECT id, total, paid, meta FROM orders ORDER BY id"})
		if res.IsError {
			t.Fatalf("query: %s", text(res))
		}
		var out queryOut
		structured(t, res, &out)
		if out.Status != "ok" || out.RowCount != 2 || len(out.Columns) != 4 || out.Columns[1].Type != "numeric" {
			t.Fatalf("query = %+v", out)
		}
		// Numbers, booleans and JSON arrive typed; NULL as null.
		row := out.Rows[0]
		if row[0] != 1.0 || row[1] != 12.5 || row[2] != true || row[3].(map[string]any)["via"] != "web" || out.Rows[1][3] != nil {
			t.Fatalf("rows = %#v", out.Rows)
		}
		if !strings.Contains(text(res), "(2 rows)") || !strings.Contains(text(res), "total") {
			t.Fatalf("text table:\n%s", text(res))
		}
	})
	t.Run("masked values in results", func(t *testing.T) {
		res := call(t, cs, "query", map[string]any{"connection": "pg", "sql": "SELECT id, name, email, card FROM users WHERE id = 7"})
		var out queryOut
		structured(t, res, &out)
		if res.IsError || out.RowCount != 1 {
			t.Fatalf("query: %s", text(res))
		}
		r := out.Rows[0]
		name, email, card := r[1].(string), r[2].(string), r[3].(string)
		if r[0] != 7.0 || name == "user7" || !strings.Contains(email, "REDACTED") || strings.Contains(card, "4111 1111 1111") || !strings.HasSuffix(card, "1111") {
			t.Fatalf("masked row = %#v", r)
		}
		if strings.Contains(text(res), "user7@example.com") || strings.Contains(text(res), "4111 1111 1111 1111") {
			t.Fatalf("text table shows clear values:\n%s", text(res))
		}
	})
	t.Run("denied query", func(t *testing.T) {
		res := call(t, cs, "query", map[string]any{"connection": "pg", "sql": "DELETE FROM users WHERE id = 1"})
		if !res.IsError || !strings.Contains(text(res), "no policy permits sql:delete") {
			t.Fatalf("read-scope DELETE: error %v: %s", res.IsError, text(res))
		}
		res = call(t, cs, "query", map[string]any{"connection": "pg", "sql": "SELECT pg_read_file('/etc/passwd')"})
		if !res.IsError || !strings.Contains(text(res), `denied by policy "guard-risky-function"`) {
			t.Fatalf("risky function: error %v: %s", res.IsError, text(res))
		}
	})
	t.Run("policy sees arguments", func(t *testing.T) {
		res := call(t, cs, "query", map[string]any{"connection": "pg", "sql": "SELECT count(*) FROM secret_table"})
		if !res.IsError || !strings.Contains(text(res), `denied by policy "no-secret-table-via-mcp": the secret table is off limits`) {
			t.Fatalf("argument policy: error %v: %s", res.IsError, text(res))
		}
	})
	t.Run("row limit", func(t *testing.T) {
		res := call(t, cs, "query", map[string]any{"connection": "pg", "sql": "SELECT id FROM users ORDER BY id", "max_rows": 5})
		var out queryOut
		structured(t, res, &out)
		if res.IsError || !out.Truncated || out.RowCount != 5 || !strings.Contains(text(res), "Only the first 5 rows") {
			t.Fatalf("row limit: %+v\n%s", out, text(res))
		}
		res = call(t, cs, "query", map[string]any{"connection": "pg", "sql": "SELECT 1", "max_rows": 100000})
		if !res.IsError || !strings.Contains(text(res), "max_rows") {
			t.Fatalf("max_rows above the limit: %s", text(res))
		}
	})
	t.Run("sql errors", func(t *testing.T) {
		res := call(t, cs, "query", map[string]any{"connection": "pg", "sql": "SELECT nope FROM users"})
		if !res.IsError || !strings.Contains(text(res), `column "nope" does not exist`) || !strings.Contains(text(res), "SQLSTATE 42703") {
			t.Fatalf("bad column: %s", text(res))
		}
	})
	t.Run("connection outside the token", func(t *testing.T) {
		res := call(t, cs, "query", map[string]any{"connection": "prod", "sql": "SELECT 1"})
		if !res.IsError || !strings.Contains(text(res), `not scoped to connection "prod"`) {
			t.Fatalf("query on prod: %s", text(res))
		}
	})
}

func TestToolsOverHTTP(t *testing.T) {
	h := newHarness(t, harnessOpts{extraPolicy: argumentPolicy})
	h.seed()
	cs := h.connectHTTP(h.token("report-bot", "read"))
	toolsSuite(t, h, cs)
}

func TestToolsOverStdio(t *testing.T) {
	h := newHarness(t, harnessOpts{extraPolicy: argumentPolicy})
	h.seed()
	cs := h.connectStdio(h.token("report-bot", "read"))
	toolsSuite(t, h, cs)

	// The gateway saw the real client's initialize through the bridge.
	evs := h.events(200)
	found := false
	for _, ev := range evs {
		if ev.Action == "mcp:call" && ev.Kind == audit.KindDecision && ev.Details["mcp_client"] == "gatehouse-stdio-test/4.5.6" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no mcp:call decision names the stdio client")
	}
}

// TestToolCallAudit: every tool call is an audit event naming the MCP
// client, the agent, the human, the tool and its masked arguments; its SQL
// session names the call; its outcome follows.
func TestToolCallAudit(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.seed()
	cs := h.connectHTTP(h.token("report-bot", "read"))
	res := call(t, cs, "query", map[string]any{"connection": "pg", "sql": "SELECT id FROM users WHERE card = '4111 1111 1111 1111'", "max_rows": 3})
	if res.IsError {
		t.Fatalf("query: %s", text(res))
	}
	var decision, outcome, sqlDecision, sessionStart *audit.Event
	evs := h.events(100)
	for i := range evs {
		ev := &evs[i]
		switch {
		case ev.Kind == audit.KindDecision && ev.Action == "mcp:call":
			decision = ev
		case ev.Kind == "mcp.result":
			outcome = ev
		case ev.Kind == audit.KindDecision && ev.Action == "sql:select":
			sqlDecision = ev
		case ev.Kind == "session.start":
			sessionStart = ev
		}
	}
	if decision == nil || outcome == nil || sqlDecision == nil || sessionStart == nil {
		t.Fatalf("missing events: decision %v outcome %v sql %v session %v", decision != nil, outcome != nil, sqlDecision != nil, sessionStart != nil)
	}
	d := decision.Details
	if decision.Principal != `Agent::"report-bot"` || decision.OnBehalfOf != "alice@example.com" || decision.Resource != "pg/query" ||
		decision.Decision != "allow" || d["tool"] != "query" || d["mcp_client"] != "gatehouse-go-test/1.2.3" || d["mcp_session"] == "" {
		t.Fatalf("decision event = %+v", decision)
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(d["arguments"]), &args); err != nil {
		t.Fatalf("arguments %q: %v", d["arguments"], err)
	}
	if args["connection"] != "pg" || args["max_rows"] != 3.0 || strings.Contains(d["arguments"], "4111 1111 1111 1111") || !strings.Contains(d["arguments"], "REDACTED") {
		t.Fatalf("arguments = %s, want them with the card masked", d["arguments"])
	}
	if outcome.Decision != "ok" || outcome.Details["call"] != d["call"] || outcome.Details["rows"] != "3" {
		t.Fatalf("outcome event = %+v", outcome)
	}
	// The statement went through the PostgreSQL engine's own session,
	// which names the call and the MCP client's address.
	if sessionStart.Details["application_name"] != "gatehouse-mcp/"+d["call"] || !strings.HasPrefix(sessionStart.Source, "mcp ") ||
		sqlDecision.Principal != `Agent::"report-bot"` || sqlDecision.Session != sessionStart.Session {
		t.Fatalf("sql session events: start %+v decision %+v", sessionStart, sqlDecision)
	}
}

// TestBearerAuth follows the MCP authorization spec: no or a bad token is
// a 401 whose WWW-Authenticate names the RFC 9728 metadata.
func TestBearerAuth(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}`
	for _, tc := range []struct{ name, auth string }{{"no token", ""}, {"bad token", "Bearer not-a-token"}} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.api+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := `Bearer resource_metadata="` + h.api + `/.well-known/oauth-protected-resource/mcp"`
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
				t.Fatalf("status %d, WWW-Authenticate %q; want 401, %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
			}
		})
	}
	t.Run("resource metadata", func(t *testing.T) {
		resp, err := http.Get(h.api + "/.well-known/oauth-protected-resource/mcp")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var meta struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			BearerMethods        []string `json:"bearer_methods_supported"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
			t.Fatal(err)
		}
		if meta.Resource != h.api+"/mcp" || !slices.Equal(meta.AuthorizationServers, []string{h.api}) || !slices.Equal(meta.BearerMethods, []string{"header"}) {
			t.Fatalf("metadata = %+v", meta)
		}
		resp2, err := http.Get(h.api + "/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp2.Body)
		resp2.Body.Close()
		if !strings.Contains(string(b), `"token_endpoint":"`+h.api+`/v1/token"`) || !strings.Contains(string(b), "token-exchange") {
			t.Fatalf("authorization server metadata: %s", b)
		}
	})
	t.Run("revoked token stops the session", func(t *testing.T) {
		tok := h.token("report-bot", "read")
		cs := h.connectHTTP(tok)
		if res := call(t, cs, "list_connections", nil); res.IsError {
			t.Fatalf("list_connections: %s", text(res))
		}
		c, err := h.gw.Identity.Verify(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.gw.Admin.RevokeToken(context.Background(), c.ID, "test"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_connections"}); err == nil {
			t.Fatal("a revoked token still calls tools")
		}
	})
	t.Run("another principal cannot use the session", func(t *testing.T) {
		// The SDK binds a session to the principal that opened it.
		c := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "0"}, nil)
		rt := &switchingTransport{token: h.token("bot-a", "read")}
		cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.api + "/mcp", HTTPClient: &http.Client{Transport: rt}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		rt.token = h.token("bot-b", "read")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_connections"}); err == nil {
			t.Fatal("bot-b's token was accepted on bot-a's session")
		}
	})
}

type switchingTransport struct{ token string }

func (s *switchingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return bearerTransport{s.token}.RoundTrip(r)
}

// TestScopes: an agent with no scope may open a session but call nothing.
func TestScopes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cs := h.connectHTTP(h.token("no-scope-bot"))
	res := call(t, cs, "list_connections", nil)
	if !res.IsError || !strings.Contains(text(res), "no policy permits mcp:call on gatehouse/list_connections") {
		t.Fatalf("list_connections without a scope: %s", text(res))
	}
}

// TestShutdownWithOpenSession: neither a client's open event stream nor a
// statement held for approval in the background holds the gateway's
// shutdown.
func TestShutdownWithOpenSession(t *testing.T) {
	h := newHarness(t, harnessOpts{extraPolicy: approvalPolicy, pgListener: true})
	h.seed()
	// The Go SDK client keeps a standalone event stream (GET) open.
	cs := h.connectHTTP(h.token("report-bot", "read"))
	pendingQuery(t, cs, "UPDATE users SET note = 'x' WHERE id = 9")
	start := time.Now()
	h.stop()
	t.Logf("stopped in %s", time.Since(start))
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the gateway took %s to stop with an MCP session open", d)
	}
}
