package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testenv/gatewaytest"
	"github.com/jackc/pgx/v5/pgproto3"
)

// harness is a running gateway in front of a private PostgreSQL database
// that requires scram-sha-256, with an upstream role whose password only
// the in-process agent knows.
type harness struct {
	t        *testing.T
	gw       *app.Gateway
	pgAddr   string // gateway's postgres listener
	upstream string // direct URL to the upstream database (as its owner)
	db       string
	password string
	dir      string
	cfgPath  string // the config on disk, for CLI commands
	evil     string // a role name attacks try to create (attacks_test.go)
	// stop shuts the gateway down (once; cleanup calls it too).
	stop func() error
	// passwordEnv is the environment variable the connection's password
	// reference names (password: env:NAME).
	passwordEnv string
}

type harnessOpts struct {
	maskRules   string // YAML; "" uses the built-in rules
	syncAudit   bool
	noLoopback  bool // allow_insecure_loopback: false
	maxMessage  int
	extraPolicy string // an extra .cedar file
	// brokenStore: the test breaks the store, so stopping cannot flush
	// the audit log and reports it.
	brokenStore bool
	extraConfig string // appended to the YAML
	// superuser makes the upstream role a superuser: the over-privileged
	// service account agents are handed today, which the attack tests use.
	superuser bool
	// connExtra is appended to the pg connection's YAML entry (indented).
	connExtra string
	// auditExtra is added to the audit: map (", key: value").
	auditExtra string
}

func freeAddr(t *testing.T) string { return testenv.FreeAddr(t) }

func randHex(n int) string { return testenv.RandHex(n) }

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	up := testenv.NewUpstream(t, "gh_app_", "")
	if o.superuser {
		admin, err := sql.Open("pgx", up.AdminURL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec("ALTER ROLE " + up.Role + " SUPERUSER"); err != nil {
			t.Fatal(err)
		}
		admin.Close()
	}
	u, _ := url.Parse(up.URL)
	dbName, role, password := up.DB, up.Role, up.Password
	h := &harness{t: t, upstream: u.String(), db: dbName, password: password, dir: t.TempDir()}

	policies := filepath.Join(h.dir, "policies")
	if err := os.CopyFS(policies, policy.StarterFS()); err != nil {
		t.Fatal(err)
	}
	if o.extraPolicy != "" {
		os.WriteFile(filepath.Join(policies, "extra.cedar"), []byte(o.extraPolicy), 0o644)
	}
	envName := "GH_TEST_PG_PASSWORD_" + strings.ToUpper(randHex(3))
	os.Setenv(envName, password)
	t.Cleanup(func() { os.Unsetenv(envName) })
	h.passwordEnv = envName
	h.pgAddr = freeAddr(t)
	cfgYAML := fmt.Sprintf(`
data_dir: %s/data
listen: {api: %s, postgres: %s}
policies: %s
allow_insecure_loopback: %v
log: {level: warn}
audit: {durability: %s%s}
connections:
  - name: pg
    type: postgres
    address: %s
    database: %s
    user: %s
    password: env:%s
    tls_mode: disable
%s`, h.dir, freeAddr(t), h.pgAddr, policies, !o.noLoopback, map[bool]string{true: "sync", false: "group"}[o.syncAudit], o.auditExtra, u.Host, dbName, role, envName, o.connExtra)
	if o.maskRules != "" {
		os.WriteFile(filepath.Join(h.dir, "mask.yaml"), []byte(o.maskRules), 0o644)
		cfgYAML += "masking: {rules: " + filepath.Join(h.dir, "mask.yaml") + "}\n"
	}
	if o.maxMessage > 0 {
		cfgYAML += fmt.Sprintf("postgres: {max_message_bytes: %d}\n", o.maxMessage)
	}
	cfgYAML += o.extraConfig
	h.cfgPath = filepath.Join(h.dir, "gatehouse.yaml")
	if err := os.WriteFile(h.cfgPath, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(cfgYAML), h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	gw, stop := gatewaytest.Start(t, cfg)
	h.gw, h.stop = gw, stop
	t.Cleanup(func() {
		if err := stop(); err != nil && !o.brokenStore {
			t.Errorf("gateway stop: %v", err)
		}
	})
	return h
}

// userToken issues a token for a human (a User principal) in groups.
func (h *harness) userToken(user string, groups ...string) string {
	h.t.Helper()
	tok, _, err := h.gw.Identity.Issue(context.Background(), identity.IssueRequest{Kind: identity.KindUser, Subject: user, Groups: groups, Connections: []string{"pg"}})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// token issues a token for an agent with the given scopes on connection pg.
func (h *harness) token(agent string, scopes ...string) string {
	h.t.Helper()
	req := identity.IssueRequest{Kind: identity.KindAgent, Subject: agent, Actor: "alice@example.com", Connections: []string{"pg"}}
	for _, s := range scopes {
		req.Scopes = append(req.Scopes, identity.Scope(s))
	}
	tok, _, err := h.gw.Identity.Issue(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// dsn is a libpq URL through the gateway.
func (h *harness) dsn(token string, extra ...string) string {
	host, port, _ := net.SplitHostPort(h.pgAddr)
	q := url.Values{"sslmode": {"disable"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword("pg", token), Host: net.JoinHostPort(host, port), Path: "/" + h.db, RawQuery: q.Encode()}
	return u.String()
}

// exec runs statements directly on the upstream as its owner.
func (h *harness) exec(stmts ...string) {
	h.t.Helper()
	db, err := sql.Open("pgx", h.upstream)
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			h.t.Fatalf("%s: %v", s, err)
		}
	}
}

func identityReq(agent, conn string) identity.IssueRequest {
	return identity.IssueRequest{Kind: identity.KindAgent, Subject: agent, Connections: []string{conn}, Scopes: []identity.Scope{identity.ScopeRead}}
}

// rawClient speaks the protocol by hand, for messages no driver sends.
type rawClient struct {
	conn net.Conn
	fe   *pgproto3.Frontend
}

func pgconnFrontend(c net.Conn) *rawClient {
	return &rawClient{conn: c, fe: pgproto3.NewFrontend(c, c)}
}

func (r *rawClient) startup(db, token string) error {
	r.conn.SetDeadline(time.Now().Add(20 * time.Second))
	r.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "pg", "database": db}})
	if err := r.fe.Flush(); err != nil {
		return err
	}
	for {
		m, err := r.fe.Receive()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *pgproto3.AuthenticationCleartextPassword:
			r.fe.Send(&pgproto3.PasswordMessage{Password: token})
			if err := r.fe.Flush(); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("startup: %s", m.Message)
		case *pgproto3.ReadyForQuery:
			return nil
		}
	}
}

// readError reads until an ErrorResponse and returns its message.
func (r *rawClient) readError() (string, error) {
	for {
		m, err := r.fe.Receive()
		if err != nil {
			return "", err
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			return e.Message, nil
		}
	}
}
