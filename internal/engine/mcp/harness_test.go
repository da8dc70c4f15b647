package mcp_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testenv/gatewaytest"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// harness is a running gateway (API listener only: the MCP tools reach
// the PostgreSQL engine in process, with no postgres listener) in front of
// a private PostgreSQL database whose password only the in-process agent
// knows.
type harness struct {
	t        *testing.T
	gw       *app.Gateway
	api      string // http://127.0.0.1:port
	upstream string // direct URL to the upstream database, as its owner
	dir      string
	stop     func() // stops the gateway (once; also at cleanup)
}

type harnessOpts struct {
	extraPolicy string // an extra .cedar file
	mcpYAML     string // the mcp: section of the config, e.g. "{approval_wait: 2s}"
	pgListener  bool   // also serve listen.postgres (whose stop waits for every wire session)
}

// maskRules mark the users table's columns three ways, for the describe
// and masking tests.
const maskRules = `
detectors:
  default: redact
columns:
  - column: "pg/public.users.name"
    strategy: redact
  - column: "*.users.card"
    strategy: partial
    detector: card
  - column: "*.users.id"
    strategy: clear
`

func randHex(n int) string { return testenv.RandHex(n) }

func freeAddr(t *testing.T) string { return testenv.FreeAddr(t) }

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	up := testenv.NewUpstream(t, "gh_mcp_", "")
	u, _ := url.Parse(up.URL)
	dbName, role, password := up.DB, up.Role, up.Password
	h := &harness{t: t, upstream: u.String(), dir: t.TempDir()}

	policies := filepath.Join(h.dir, "policies")
	if err := os.CopyFS(policies, policy.StarterFS()); err != nil {
		t.Fatal(err)
	}
	if o.extraPolicy != "" {
		os.WriteFile(filepath.Join(policies, "extra.cedar"), []byte(o.extraPolicy), 0o644)
	}
	os.WriteFile(filepath.Join(h.dir, "mask.yaml"), []byte(maskRules), 0o644)
	envName := "GH_TEST_MCP_PASSWORD_" + strings.ToUpper(randHex(3))
	os.Setenv(envName, password)
	t.Cleanup(func() { os.Unsetenv(envName) })
	apiAddr := freeAddr(t)
	h.api = "http://" + apiAddr
	pgAddr := `""`
	if o.pgListener {
		pgAddr = freeAddr(t)
	}
	mcpYAML := o.mcpYAML
	if mcpYAML == "" {
		mcpYAML = "{}"
	}
	cfgYAML := fmt.Sprintf(`
data_dir: %s/data
listen: {api: %s, postgres: %s}
policies: %s
log: {level: warn}
masking: {rules: %s/mask.yaml}
mcp: %s
connections:
  - name: pg
    type: postgres
    address: %s
    database: %s
    user: %s
    password: env:%s
    tls_mode: disable
`, h.dir, apiAddr, pgAddr, policies, h.dir, mcpYAML, u.Host, dbName, role, envName)
	cfg, err := config.Parse([]byte(cfgYAML), filepath.Join(h.dir, "gatehouse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gw, stop := gatewaytest.Start(t, cfg)
	h.gw = gw
	h.stop = func() {
		if err := stop(); err != nil {
			t.Errorf("gateway stop: %v", err)
		}
	}
	t.Cleanup(h.stop)
	return h
}

// seed creates the tables the tests read, directly upstream.
func (h *harness) seed() {
	h.t.Helper()
	db, err := sql.Open("pgx", h.upstream)
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`CREATE TABLE users (id int PRIMARY KEY, name text, email text, card text, note text)`,
		`INSERT INTO users SELECT i, 'user'||i, 'user'||i||'@example.com', '4111 1111 1111 1111', 'order '||i FROM generate_series(1, 100) i`,
		`CREATE TABLE orders (id int PRIMARY KEY, user_id int, total numeric, paid bool, meta jsonb)`,
		`INSERT INTO orders VALUES (1, 1, 12.50, true, '{"via": "web"}'), (2, 1, 7, false, NULL)`,
		`CREATE TABLE secret_table (id int)`,
	} {
		if _, err := db.Exec(s); err != nil {
			h.t.Fatalf("%s: %v", s, err)
		}
	}
}

// token issues an agent token acting for alice on connection pg.
func (h *harness) token(agent string, scopes ...string) string {
	h.t.Helper()
	req := identity.IssueRequest{Kind: identity.KindAgent, Subject: agent, Actor: "alice@example.com", Connections: []string{"pg"}, TTL: 15 * time.Minute}
	for _, s := range scopes {
		req.Scopes = append(req.Scopes, identity.Scope(s))
	}
	tok, _, err := h.gw.Identity.Issue(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// bearerTransport adds a token to every request.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// connectHTTP opens a Go SDK client session on /mcp with token.
func (h *harness) connectHTTP(token string) *mcp.ClientSession {
	h.t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "gatehouse-go-test", Version: "1.2.3"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: h.api + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{token}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, nil)
	if err != nil {
		h.t.Fatalf("connect over HTTP: %v", err)
	}
	h.t.Cleanup(func() { cs.Close() })
	return cs
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/gatehouse once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-mcp-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gatehouse")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/gatehouse")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// connectStdio spawns `gatehouse mcp` and opens a Go SDK client session on
// its stdin and stdout, as an agent framework does.
func (h *harness) connectStdio(token string, args ...string) *mcp.ClientSession {
	h.t.Helper()
	cmd := exec.Command(binary(h.t), append([]string{"mcp", "--gateway", h.api}, args...)...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_TOKEN="+token)
	cmd.Stderr = testWriter{h.t}
	c := mcp.NewClient(&mcp.Implementation{Name: "gatehouse-stdio-test", Version: "4.5.6"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		h.t.Fatalf("connect over stdio: %v", err)
	}
	h.t.Cleanup(func() { cs.Close() })
	return cs
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("gatehouse mcp: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// call calls a tool and fails the test on a protocol error.
func call(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// structured decodes a result's structured content into v.
func structured(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
}

// queryOut is the query tool's structured content.
type queryOut struct {
	Status     string `json:"status"`
	Columns    []struct{ Name, Type string }
	Rows       [][]any `json:"rows"`
	RowCount   int     `json:"row_count"`
	Truncated  bool    `json:"truncated"`
	CommandTag string  `json:"command_tag"`
	ApprovalID string  `json:"approval_id"`
}

// events returns the audit log's last n events.
func (h *harness) events(n int) []audit.Event {
	h.t.Helper()
	// Decisions are queued in order; give the group commit a moment.
	time.Sleep(300 * time.Millisecond)
	raw, err := h.gw.Admin.TailAudit(context.Background(), n)
	if err != nil {
		h.t.Fatal(err)
	}
	out := make([]audit.Event, 0, len(raw))
	for _, r := range raw {
		var ev audit.Event
		if err := json.Unmarshal(r, &ev); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}
