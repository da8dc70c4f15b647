package tunnel_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// The end-to-end tests run the real gatehouse binary: `gatehouse gateway`
// and `gatehouse agent` as separate processes on loopback, psql as the
// client, the private PostgreSQL of scripts/test.sh as the upstream.

var (
	binDir     string
	buildBin   sync.Once
	binPath    string
	binErr     error
	buildFlags []string
)

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "gatehouse-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// gatehouseBin builds the binary once per test run (only when an
// end-to-end test needs it).
func gatehouseBin(t *testing.T) string {
	t.Helper()
	buildBin.Do(func() {
		binPath = filepath.Join(binDir, "gatehouse")
		args := append(append([]string{"build"}, buildFlags...), "-o", binPath, testenv.Module+"/cmd/gatehouse")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func psqlPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("psql")
	testenv.Require(t, err == nil, "psql is not installed")
	return p
}

func freePort(t *testing.T) string { return testenv.FreeAddr(t) }

func randHex(n int) string { return testenv.RandHex(n) }

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a gatehouse process started by a test.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(gatehouseBin(t), args...)
	p.cmd.Env = append(minimalEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if strings.Contains(p.out.String(), "WARNING: DATA RACE") {
			t.Errorf("%s: data race", name)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// minimalEnv is what a gatehouse process gets besides what a test adds: no
// PG* variables, no secrets of the test process.
func minimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (p *proc) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("%s did not stop on SIGTERM", p.name)
		p.kill9()
	}
}

func (p *proc) exited(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// waitLog waits for text in the process's output.
func (p *proc) waitLog(text string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.out.String(), text) {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not log %q within %s; output:\n%s", p.name, text, d, p.out.String())
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before logging %q; output:\n%s", p.name, p.err, text, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// upstream is a database on the private PostgreSQL with a role that logs
// in with a SCRAM password.
type upstream struct {
	addr, db, role, password string
	admin                    string // URL as the database's owner (the test server's admin)
}

func newUpstream(t *testing.T, password string) *upstream {
	t.Helper()
	u := testenv.NewUpstream(t, "gh_agent_", password)
	return &upstream{addr: u.Addr, db: u.DB, role: u.Role, password: u.Password, admin: u.AdminURL}
}

// deployment is a gateway config, an agent config and their files.
type deployment struct {
	t        *testing.T
	dir      string
	gwConfig string
	agConfig string
	pgAddr   string
	agents   string
	up       *upstream
	pwEnv    string // the agent's env var holding the upstream password
	psqlBin  string
}

func newDeployment(t *testing.T, up *upstream) *deployment {
	t.Helper()
	d := &deployment{t: t, dir: t.TempDir(), pgAddr: freePort(t), agents: freePort(t), up: up,
		pwEnv: "PG_PASSWORD_" + strings.ToUpper(randHex(3)), psqlBin: psqlPath(t)}
	policies := filepath.Join(d.dir, "policies")
	if err := os.CopyFS(policies, policy.StarterFS()); err != nil {
		t.Fatal(err)
	}
	d.gwConfig = filepath.Join(d.dir, "gatehouse.yaml")
	write(t, d.gwConfig, fmt.Sprintf(`
data_dir: ./gw-data
listen: {api: %s, postgres: %s, agents: %s}
policies: ./policies
allow_insecure_loopback: true
log: {level: debug, format: json}
agents: {heartbeat: 500ms, dial_wait: 3s}
`, freePort(t), d.pgAddr, d.agents))
	d.agConfig = filepath.Join(d.dir, "agent.yaml")
	write(t, d.agConfig, fmt.Sprintf(`
name: a1
gateway: %s
enroll_token: env:GATEHOUSE_ENROLL_TOKEN
data_dir: ./agent-data
log: {level: debug, format: json}
connections:
  - name: pg
    type: postgres
    address: %s
    database: %s
    user: %s
    password: env:%s
    tls_mode: disable
`, d.agents, up.addr, up.db, up.role, d.pwEnv))
	return d
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cli runs an admin command against the gateway's config and returns its
// stdout.
func (d *deployment) cli(args ...string) string {
	d.t.Helper()
	cmd := exec.Command(gatehouseBin(d.t), append(args, "--config", d.gwConfig)...)
	cmd.Env = minimalEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		d.t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func (d *deployment) gateway() *proc {
	d.t.Helper()
	p := startProc(d.t, "gateway", nil, "gateway", "--config", d.gwConfig)
	p.waitLog("gatehouse started", 30*time.Second)
	return p
}

// agent starts the agent process; enrollToken is only needed the first
// time.
func (d *deployment) agent(enrollToken string) *proc {
	d.t.Helper()
	env := []string{d.pwEnv + "=" + d.up.password}
	if enrollToken != "" {
		env = append(env, "GATEHOUSE_ENROLL_TOKEN="+enrollToken)
	}
	return startProc(d.t, "agent", env, "agent", "--config", d.agConfig)
}

func (d *deployment) clientToken() string {
	return strings.TrimSpace(d.cli("token", "issue", "--agent", "e2e-bot", "--on-behalf-of", "alice@example.com", "--connection", "pg", "--scope", "read", "--ttl", "30m"))
}

// psql runs one statement through the gateway.
func (d *deployment) psql(ctx context.Context, token, stmt string) (string, error) {
	host, port, _ := net.SplitHostPort(d.pgAddr)
	cmd := exec.CommandContext(ctx, d.psqlBin, fmt.Sprintf("host=%s port=%s user=pg dbname=%s sslmode=disable connect_timeout=10", host, port, d.up.db), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", stmt)
	cmd.Env = append(minimalEnv(), "PGPASSWORD="+token)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// psqlEventually retries until a statement succeeds (an agent
// reconnecting), within d.
func (d *deployment) psqlEventually(token, stmt string, within time.Duration) string {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err := d.psql(ctx, token, stmt)
		cancel()
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("psql %q did not succeed within %s: %v\n%s", stmt, within, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// auditEvents exports the gateway's audit log.
func (d *deployment) auditEvents() []map[string]any {
	d.t.Helper()
	var evs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(d.cli("audit", "export")), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			d.t.Fatalf("audit line %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// countEvents counts events of kind whose reason contains reason.
func countEvents(evs []map[string]any, kind, reason string) int {
	n := 0
	for _, e := range evs {
		r, _ := e["reason"].(string)
		if e["kind"] == kind && strings.Contains(r, reason) {
			n++
		}
	}
	return n
}

// TestGatewayAndAgentProcesses runs the gateway and the agent as separate
// processes and psql through them, then the faults: the agent killed with
// SIGKILL mid-query, the agent restarted, the gateway restarted, and the
// agent revoked.
func TestGatewayAndAgentProcesses(t *testing.T) {
	up := newUpstream(t, "pw-"+randHex(12))
	d := newDeployment(t, up)
	gw := d.gateway()
	enroll := strings.TrimSpace(d.cli("agents", "enroll", "--name", "a1"))
	ag := d.agent(enroll)
	ag.waitLog("tunnel up", 20*time.Second)
	tok := d.clientToken()

	t.Run("psql through gateway and agent", func(t *testing.T) {
		out := d.psqlEventually(tok, "SELECT current_user || ' ' || current_database()", 10*time.Second)
		if out != up.role+" "+up.db {
			t.Fatalf("psql = %q, want the upstream role and database", out)
		}
	})

	t.Run("agents list", func(t *testing.T) {
		out := d.cli("agents", "list")
		if !regexpLine(out, "a1", "connected", "dev", "pg") {
			t.Fatalf("agents list:\n%s", out)
		}
		var views []map[string]any
		json.Unmarshal([]byte(d.cli("agents", "list", "--json")), &views)
		if len(views) != 1 || views[0]["status"] != "connected" || views[0]["last_seen"] == nil {
			t.Fatalf("agents list --json: %+v", views)
		}
	})

	t.Run("kill -9 mid-query", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		type result struct {
			out string
			err error
			at  time.Time
		}
		res := make(chan result, 1)
		go func() {
			out, err := d.psql(ctx, tok, "SELECT pg_sleep(30)")
			res <- result{out, err, time.Now()}
		}()
		waitQueryRunning(t, up, "pg_sleep")
		killed := time.Now()
		ag.kill9()
		var r result
		select {
		case r = <-res:
		case <-time.After(10 * time.Second):
			t.Fatal("psql still waiting 10s after the agent was killed")
		}
		if took := r.at.Sub(killed); took > 5*time.Second {
			t.Fatalf("client error %s after the agent was killed, want under 5s", took)
		}
		if r.err == nil || !strings.Contains(r.out, "the agent serving pg went away") {
			t.Fatalf("psql after kill: %v\n%s", r.err, r.out)
		}
		waitEvents(t, d, func(evs []map[string]any) bool {
			return countEvents(evs, "session.end", "agent a1 went away") == 1 && countEvents(evs, "agent.disconnect", "") >= 1
		})
	})

	t.Run("restarted agent serves new sessions", func(t *testing.T) {
		ag = d.agent("") // enrolled already: no token this time
		ag.waitLog("tunnel up", 20*time.Second)
		if out := d.psqlEventually(tok, "SELECT 'after agent restart'", 10*time.Second); out != "after agent restart" {
			t.Fatalf("psql = %q", out)
		}
	})

	t.Run("agent reconnects after a gateway restart", func(t *testing.T) {
		gw.stop()
		gw = d.gateway()
		if out := d.psqlEventually(tok, "SELECT 'after gateway restart'", 20*time.Second); out != "after gateway restart" {
			t.Fatalf("psql = %q", out)
		}
		if n := strings.Count(ag.out.String(), `"msg":"tunnel up"`); n < 2 {
			t.Fatalf("agent logged %d tunnels up, want a reconnect", n)
		}
	})

	t.Run("revoke cuts the agent off", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res := make(chan string, 1)
		go func() {
			out, _ := d.psql(ctx, tok, "SELECT pg_sleep(30)")
			res <- out
		}()
		waitQueryRunning(t, up, "pg_sleep")
		d.cli("agents", "revoke", "a1", "--reason", "e2e test")
		select {
		case out := <-res:
			if !strings.Contains(out, "went away") {
				t.Fatalf("session after revocation: %s", out)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("session still running 5s after revocation")
		}
		if !ag.exited(10 * time.Second) {
			t.Fatal("revoked agent still running")
		}
		if !strings.Contains(ag.out.String(), "revoked") {
			t.Fatalf("agent output does not say it was revoked:\n%s", ag.out.String())
		}
		evs := d.auditEvents()
		if countEvents(evs, "agent.revoke", "e2e test") != 1 || countEvents(evs, "agent.disconnect", "revoked") < 1 {
			t.Fatal("no agent.revoke / agent.disconnect(revoked) events")
		}
		if out := d.cli("agents", "list"); !regexpLine(out, "a1", "revoked") {
			t.Fatalf("agents list after revoke:\n%s", out)
		}
	})
}

// regexpLine reports whether some line of out holds all the words.
func regexpLine(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		all := true
		for _, w := range words {
			found := false
			for _, x := range f {
				if x == w || strings.HasPrefix(x, w+",") || strings.HasSuffix(x, ","+w) {
					found = true
				}
			}
			all = all && found
		}
		if all {
			return true
		}
	}
	return false
}

// waitQueryRunning waits until the upstream runs a query containing text.
func waitQueryRunning(t *testing.T, up *upstream, text string) {
	t.Helper()
	db, err := sql.Open("pgx", up.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := db.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active' AND query LIKE '%'||$2||'%'", up.role, text).Scan(&n)
		if err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %q never started upstream (%v)", text, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvents waits (the audit log commits in groups) until ok holds for
// the gateway's audit events.
func waitEvents(t *testing.T, d *deployment, ok func([]map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := d.auditEvents()
		if ok(evs) {
			return
		}
		if time.Now().After(deadline) {
			var kinds []string
			for _, e := range evs {
				kinds = append(kinds, fmt.Sprintf("%v(%v)", e["kind"], e["reason"]))
			}
			t.Fatalf("expected audit events missing; have %s", strings.Join(kinds, " "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tapConn copies every byte the gateway reads from an agent.
type tapConn struct {
	net.Conn
	w *syncBuffer
}

func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.w.Write(b[:n])
	return n, err
}

// TestCustody: with the upstream password a unique marker, after sessions
// run (and fail) through an agent, the marker is in no gateway log line,
// no file or store row under the gateway's data_dir, no audit event, and
// no byte the gateway received over the tunnel. The gateway runs in this
// test process so the tunnel can be tapped after TLS; the agent is a real
// separate process, the only one given the password.
func TestCustody(t *testing.T) {
	marker := "CUSTODY-MARKER-" + randHex(12)
	up := newUpstream(t, marker)
	d := newDeployment(t, up)
	// A second connection whose password is wrong (but contains the
	// marker), so the refusal path is covered too.
	agentYAML, _ := os.ReadFile(d.agConfig)
	write(t, d.agConfig, string(agentYAML)+fmt.Sprintf(`
  - name: pgbad
    type: postgres
    address: %s
    database: %s
    user: %s
    password: env:%s_BAD
    tls_mode: disable
`, up.addr, up.db, up.role, d.pwEnv))

	cfg, err := config.Load(d.gwConfig)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := app.NewGateway(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	tap := &syncBuffer{}
	g.Tunnel.Tap = func(c net.Conn) net.Conn { return &tapConn{Conn: c, w: tap} }
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- g.Run(ctx, func(*app.Gateway) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("gateway: %v", err)
	}
	stopped := false
	stopGateway := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway stop: %v", err)
		}
	}
	defer stopGateway()

	enroll, _, err := g.EnrollToken(ctx, "a1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ag := startProc(t, "agent", []string{d.pwEnv + "=" + marker, d.pwEnv + "_BAD=" + marker + "-wrong", "GATEHOUSE_ENROLL_TOKEN=" + enroll},
		"agent", "--config", d.agConfig)
	ag.waitLog("tunnel up", 20*time.Second)

	tok, _, err := g.Identity.Issue(ctx, identity.IssueRequest{Kind: identity.KindAgent, Subject: "custody-bot", Actor: "alice@example.com",
		Connections: []string{"pg", "pgbad"}, Scopes: []identity.Scope{identity.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	if out := d.psqlEventually(tok, "SELECT 'custody-' || 'visible', current_user", 10*time.Second); out != "custody-visible|"+up.role {
		t.Fatalf("psql = %q", out)
	}
	// A refused upstream login and a failing statement: their errors
	// travel back through the tunnel too.
	host, port, _ := net.SplitHostPort(d.pgAddr)
	bad := exec.Command(d.psqlBin, fmt.Sprintf("host=%s port=%s user=pgbad dbname=%s sslmode=disable", host, port, up.db), "-XAtc", "SELECT 1")
	bad.Env = append(minimalEnv(), "PGPASSWORD="+tok)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "the upstream of connection pgbad refused the agent's login: password authentication failed") || strings.Contains(string(out), marker) {
		t.Fatalf("login with the wrong upstream password: %v\n%s", err, out)
	}
	if out, err := d.psql(ctx, tok, "SELECT * FROM no_such_table"); err == nil || !strings.Contains(out, "no_such_table") {
		t.Fatalf("failing statement: %v %s", err, out)
	}
	if !strings.Contains(ag.out.String(), "password authentication failed") {
		t.Fatalf("the agent did not see the refused login:\n%s", ag.out.String())
	}

	var audited bytes.Buffer
	if err := g.Store.ScanAudit(ctx, 0, func(r store.AuditRecord) error { audited.Write(r.Body); return nil }); err != nil {
		t.Fatal(err)
	}
	ag.stop()
	stopGateway()

	// The checks would pass vacuously if these were empty.
	if !strings.Contains(tap.String(), "custody-visible") {
		t.Fatal("the tap did not see the session's result rows: it is not tapping the tunnel")
	}
	if !strings.Contains(audited.String(), "session.start") || !strings.Contains(logs.String(), "agent connected") {
		t.Fatal("no audit events or logs recorded")
	}
	for what, data := range map[string]string{"gateway log": logs.String(), "tunnel bytes": tap.String(), "audit events": audited.String()} {
		if strings.Contains(data, marker) {
			t.Errorf("the upstream password appears in the %s", what)
		}
	}
	files := 0
	filepath.WalkDir(cfg.DataDir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read %s: %v", path, err)
		} else if bytes.Contains(b, []byte(marker)) {
			t.Errorf("the upstream password appears in the gateway's file %s", path)
		}
		return nil
	})
	if files < 3 {
		t.Fatalf("only %d files under %s", files, cfg.DataDir)
	}
}

// TestUpRunsTheAgentLoop: with connections in the gateway's own config (as
// `gatehouse up` writes it), dials go through the in-process agent over an
// in-memory tunnel, the same code as a remote agent.
func TestUpRunsTheAgentLoop(t *testing.T) {
	up := newUpstream(t, "pw-"+randHex(12))
	d := newDeployment(t, up)
	os.Setenv(d.pwEnv, up.password)
	defer os.Unsetenv(d.pwEnv)
	write(t, d.gwConfig, fmt.Sprintf(`
data_dir: ./gw-data
listen: {api: %s, postgres: %s}
policies: ./policies
allow_insecure_loopback: true
log: {level: warn}
connections:
  - name: pg
    type: postgres
    address: %s
    database: %s
    user: %s
    password: env:%s
    tls_mode: disable
`, freePort(t), d.pgAddr, up.addr, up.db, up.role, d.pwEnv))
	p := startProc(t, "up", []string{d.pwEnv + "=" + up.password}, "up", "--config", d.gwConfig)
	p.waitLog("Gatehouse is up", 30*time.Second)
	if out := d.psqlEventually(d.clientToken(), "SELECT 'via in-process agent'", 10*time.Second); out != "via in-process agent" {
		t.Fatalf("psql = %q", out)
	}

	// The same wiring in process shows the registered in-process agent.
	cfg, err := config.Load(d.gwConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = config.Listen{}
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	g, err := app.NewGateway(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- g.Run(ctx, func(*app.Gateway) { close(ready) }) }()
	<-ready
	agents := g.Agents.Agents()
	cancel()
	<-done
	if len(agents) != 1 || !agents[0].Local || agents[0].Connections[0] != "pg" {
		t.Fatalf("registry = %+v, want the in-process agent serving pg", agents)
	}
}
