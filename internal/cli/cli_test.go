package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// gatehouse runs the CLI in-process, as a user would type it in dir.
type gatehouse struct {
	t   *testing.T
	dir string
}

type result struct {
	code           int
	stdout, stderr string
}

func (g gatehouse) run(args ...string) result {
	g.t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"--config", filepath.Join(g.dir, "gatehouse.yaml")}, args...)
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (g gatehouse) ok(args ...string) string {
	g.t.Helper()
	r := g.run(args...)
	if r.code != 0 {
		g.t.Fatalf("gatehouse %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// starter writes the starter config `gatehouse up` writes into dir, on free
// ports, unless there is one, and returns the API address.
func starter(t *testing.T, dir string) string {
	t.Helper()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if raw, err := os.ReadFile(cfgPath); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if api, ok := strings.CutPrefix(strings.TrimSpace(line), "api: "); ok {
				return api
			}
		}
		t.Fatal("config has no listen.api")
	}
	api := freePort(t)
	// `up` with a cancelled context writes the starter and stops; then
	// rewrite the ports to free ones.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	run(ctx, []string{"--config", cfgPath, "up"}, nil, &out, &errb)
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatalf("up did not write a starter config: %v (%s)", err, errb.String())
	}
	s := strings.Replace(string(raw), "api: 127.0.0.1:8080", "api: "+api, 1)
	s = strings.Replace(s, "postgres: 127.0.0.1:15432", "postgres: "+freePort(t), 1)
	// A connection named pg, as a user adds one: tokens are issued only
	// for connections the gateway knows. Nothing listens at its address.
	s = strings.Replace(s, "connections:\n", "connections:\n  - {name: pg, type: postgres, address: \"127.0.0.1:1\", database: app, user: app}\n", 1)
	if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return api
}

// startUp runs `gatehouse up` in dir until the test ends and returns the API
// address.
func startUp(t *testing.T, dir string) string {
	t.Helper()
	api := starter(t, dir)
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	// The gateway logs from several goroutines.
	var errb testenv.Buffer
	go func() {
		done <- run(ctx, []string{"--config", cfgPath, "up"}, nil, &bytes.Buffer{}, &errb)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("gatehouse up exited %d: %s", code, errb.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return api
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTokenLifecycle(t *testing.T) {
	dir := t.TempDir()
	startUp(t, dir)
	g := gatehouse{t, dir}

	tok := strings.TrimSpace(g.ok("token", "issue", "--agent", "report-bot", "--on-behalf-of", "alice@example.com", "--connection", "pg", "--scope", "read", "--ttl", "10m"))
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token issue printed %q, want a bare JWT", tok)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(g.ok("token", "inspect", tok)), &claims); err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != "report-bot" || claims["act"] != "alice@example.com" {
		t.Fatalf("claims = %v", claims)
	}
	jti := claims["jti"].(string)

	// Rotation: the old token keeps verifying, new tokens use the new key.
	kid := strings.TrimSpace(g.ok("keys", "rotate"))
	if kid == "" || kid == claims["kid"] {
		t.Fatalf("rotate printed kid %q (old %v)", kid, claims["kid"])
	}
	g.ok("token", "inspect", tok)
	tok2 := strings.TrimSpace(g.ok("token", "issue", "--agent", "b", "--scope", "read"))
	var c2 map[string]any
	json.Unmarshal([]byte(g.ok("token", "inspect", tok2)), &c2)
	if c2["kid"] != kid {
		t.Fatalf("new token kid %v, want %s", c2["kid"], kid)
	}

	g.ok("token", "revoke", jti, "--reason", "test")
	r := g.run("token", "inspect", tok)
	if r.code == 0 || !strings.Contains(r.stderr, "revoked") {
		t.Fatalf("inspect revoked token: exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, tok) {
		t.Fatal("error output contains the token")
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no agent", []string{"token", "issue", "--scope", "read"}, exitBadInput},
		{"unknown scope", []string{"token", "issue", "--agent", "a", "--scope", "root"}, exitBadInput},
		{"ttl above max", []string{"token", "issue", "--agent", "a", "--ttl", "48h"}, exitBadInput},
		{"garbage token", []string{"token", "inspect", "not-a-token"}, exitError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := g.run(tc.args...); r.code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
		})
	}

	// The audit log saw all of it and is intact.
	tail := g.ok("audit", "tail", "-n", "50", "--json")
	for _, kind := range []string{`"token.issue"`, `"token.revoke"`, `"key.rotate"`, `"gateway.start"`} {
		if !strings.Contains(tail, kind) {
			t.Errorf("audit tail lacks %s", kind)
		}
	}
	if strings.Contains(tail, tok) {
		t.Fatal("audit log contains a token")
	}
	if out := g.ok("audit", "verify"); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s", out)
	}
}

func TestPolicyCommands(t *testing.T) {
	dir := t.TempDir()
	startUp(t, dir)
	g := gatehouse{t, dir}
	g.ok("policy", "validate")

	ents := filepath.Join(dir, "entities.json")
	os.WriteFile(ents, []byte(`[{"uid":{"type":"Agent","id":"a"},"attrs":{"scopes":["read"],"connections":["pg"]},"parents":[]}]`), 0o644)
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"read allowed", []string{"--action", `Action::"sql:select"`, "--entities", ents}, exitOK, "allow"},
		{"write denied", []string{"--action", "sql:update", "--entities", ents}, exitDenied, "deny"},
		{"bad principal", []string{"--principal", "Agent:a", "--action", "sql:select"}, exitBadInput, ""},
		{"bad context", []string{"--action", "sql:select", "--context", "{nope"}, exitBadInput, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"policy", "test", "--principal", `Agent::"a"`, "--resource", `Table::"pg/public.users"`}
			args = append(args, tc.args...)
			r := g.run(args...)
			if r.code != tc.code || !strings.HasPrefix(r.stdout, tc.out) {
				t.Fatalf("exit %d stdout %q stderr %q; want exit %d and %q", r.code, r.stdout, r.stderr, tc.code, tc.out)
			}
		})
	}

	bad := filepath.Join(dir, "policies", "zz-bad.cedar")
	os.WriteFile(bad, []byte("permit(principal, action, resource)\nwhen { context.nosuch == 1 };\n"), 0o644)
	r := g.run("policy", "validate")
	if r.code != exitBadInput || !strings.Contains(r.stderr, "zz-bad.cedar:") {
		t.Fatalf("validate bad file: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestAuditProveAndRemoteAdmin(t *testing.T) {
	dir := t.TempDir()
	api := startUp(t, dir)
	g := gatehouse{t, dir}
	admin := strings.TrimSpace(g.ok("token", "issue", "--user", "root@example.com", "--scope", "admin"))
	reader := strings.TrimSpace(g.ok("token", "issue", "--agent", "r", "--scope", "read"))
	remote := func(tok string, args ...string) result {
		return g.run(append([]string{"--gateway", "http://" + api, "--token", tok}, args...)...)
	}
	if r := remote(admin, "token", "issue", "--agent", "via-api", "--scope", "read"); r.code != 0 || strings.Count(r.stdout, ".") != 2 {
		t.Fatalf("remote issue: %+v", r)
	}
	if r := remote(reader, "audit", "verify"); r.code == 0 {
		t.Fatal("a read-scoped token could use the admin API")
	}
	if r := remote(admin, "audit", "verify"); r.code != 0 {
		t.Fatalf("remote verify: %+v", r)
	}

	// Prove an event issued before the last checkpoint (each CLI process
	// signs one as it closes the log).
	var ev struct{ ID string }
	lines := strings.Split(strings.TrimSpace(g.ok("audit", "export")), "\n")
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil {
		t.Fatal(err)
	}
	proof := g.ok("audit", "prove", ev.ID)
	pf := filepath.Join(dir, "proof.json")
	os.WriteFile(pf, []byte(proof), 0o644)
	if out := g.ok("audit", "verify-proof", pf); !strings.Contains(out, "proof verified") {
		t.Fatalf("verify-proof: %s", out)
	}
	var p map[string]any
	json.Unmarshal([]byte(proof), &p)
	p["index"] = p["index"].(float64) + 1
	b, _ := json.Marshal(p)
	os.WriteFile(pf, b, 0o644)
	if r := g.run("audit", "verify-proof", pf); r.code == 0 {
		t.Fatal("a doctored proof verified")
	}

	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"gatehouse_audit_append_seconds", "gatehouse_audit_events_total"} {
		if !strings.Contains(buf.String(), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	_ = fmt.Sprint()
}

// TestApprovalsOverAPI drives the approval endpoints with bearer tokens: a
// request for access, a refused self-approval, an approval by a reviewer in
// the group, and the grant listed.
func TestApprovalsOverAPI(t *testing.T) {
	dir := t.TempDir()
	api := startUp(t, dir)
	g := gatehouse{t, dir}
	requester := strings.TrimSpace(g.ok("token", "issue", "--user", "dana@example.com", "--group", "admins", "--scope", "read"))
	reviewer := strings.TrimSpace(g.ok("token", "issue", "--user", "erin@example.com", "--group", "admins", "--scope", "read"))
	outsider := strings.TrimSpace(g.ok("token", "issue", "--user", "frank@example.com", "--group", "devs", "--scope", "read"))
	call := func(tok, method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, "http://"+api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, a := call(requester, "POST", "/v1/access", fmt.Sprintf(`{"connection":"pg","role":"write","for_ns":%d,"reason":"hotfix"}`, int64(time.Hour)))
	if code != 200 || a["status"] != "pending" || a["principal"] != `User::"dana@example.com"` {
		t.Fatalf("access request: %d %v", code, a)
	}
	id := a["id"].(string)
	if code, out := call(requester, "POST", "/v1/approvals/"+id+"/approve", `{}`); code != http.StatusForbidden {
		t.Fatalf("self approval: %d %v", code, out)
	}
	if code, out := call(outsider, "POST", "/v1/approvals/"+id+"/approve", `{}`); code != http.StatusForbidden {
		t.Fatalf("approval by a non-member: %d %v", code, out)
	}
	if code, out := call("garbage", "POST", "/v1/approvals/"+id+"/approve", `{}`); code != http.StatusUnauthorized {
		t.Fatalf("approval with a bad token: %d %v", code, out)
	}
	code, out := call(reviewer, "POST", "/v1/approvals/"+id+"/approve", `{"reason":"ok"}`)
	if code != 200 || out["status"] != "approved" {
		t.Fatalf("approval: %d %v", code, out)
	}
	list := g.ok("access", "list")
	if !strings.Contains(list, id) || !strings.Contains(list, "approved") {
		t.Fatalf("access list:\n%s", list)
	}
	tail := g.ok("audit", "tail", "-n", "30", "--json")
	for _, k := range []string{`"approval.requested"`, `"approval.approved"`} {
		if !strings.Contains(tail, k) {
			t.Errorf("audit lacks %s", k)
		}
	}
}

// TestApprovalReviewersOverAPI: only humans in the reviewer group decide an
// approval, and only they and its requester see it (issue 10's attack
// review: an agent token issued with --group admins approved another
// agent's request, and any token listed everyone's approvals).
func TestApprovalReviewersOverAPI(t *testing.T) {
	dir := t.TempDir()
	api := startUp(t, dir)
	g := gatehouse{t, dir}
	issue := func(args ...string) string {
		return strings.TrimSpace(g.ok(append([]string{"token", "issue"}, args...)...))
	}
	requester := issue("--agent", "deployer", "--on-behalf-of", "dana@example.com", "--connection", "pg", "--scope", "read")
	dana := issue("--user", "dana@example.com", "--scope", "read")
	danaAdmin := issue("--user", "dana@example.com", "--group", "admins", "--scope", "read")
	agentInGroup := issue("--agent", "ci", "--group", "admins", "--connection", "pg", "--scope", "read")
	adminAgent := issue("--agent", "ops", "--group", "admins", "--connection", "*", "--scope", "admin")
	nosyAgent := issue("--agent", "nosy", "--connection", "pg", "--scope", "read")
	outsider := issue("--user", "frank@example.com", "--group", "devs", "--scope", "read")
	reviewer := issue("--user", "erin@example.com", "--group", "admins", "--scope", "read")
	call := func(tok, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	code, body := call(requester, "POST", "/v1/access", fmt.Sprintf(`{"connection":"pg","role":"write","for_ns":%d,"reason":"deploy"}`, int64(time.Hour)))
	var a struct{ ID, Status, Principal string }
	json.Unmarshal([]byte(body), &a)
	if code != 200 || a.Status != "pending" || a.Principal != `Agent::"deployer"` {
		t.Fatalf("access request: %d %s", code, body)
	}

	t.Run("agents do not decide", func(t *testing.T) {
		for name, tok := range map[string]string{"agent in admins": agentInGroup, "admin-scoped agent in admins": adminAgent} {
			code, body := call(tok, "POST", "/v1/approvals/"+a.ID+"/approve", `{}`)
			if code != http.StatusForbidden || !strings.Contains(body, "approval:decide") {
				t.Errorf("%s approving: %d %s", name, code, body)
			}
		}
	})
	t.Run("the human the agent acts for does not decide", func(t *testing.T) {
		if code, body := call(danaAdmin, "POST", "/v1/approvals/"+a.ID+"/approve", `{}`); code != http.StatusForbidden {
			t.Errorf("dana approving her agent's request: %d %s", code, body)
		}
	})
	t.Run("who sees it", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			tok  string
			sees bool
		}{
			{"the requesting agent", requester, true},
			{"the human it acts for", dana, true},
			{"a reviewer", reviewer, true},
			{"an unrelated agent", nosyAgent, false},
			{"an agent in the reviewer group", agentInGroup, false},
			{"a human outside the group", outsider, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, list := call(tc.tok, "GET", "/v1/approvals", "")
				if code != 200 || strings.Contains(list, a.ID) != tc.sees {
					t.Errorf("list: %d, sees it %v, want %v: %s", code, strings.Contains(list, a.ID), tc.sees, list)
				}
				code, one := call(tc.tok, "GET", "/v1/approvals/"+a.ID, "")
				if (code == 200) != tc.sees || (!tc.sees && strings.Contains(one, "deploy")) {
					t.Errorf("get: %d %s", code, one)
				}
			})
		}
	})
	t.Run("a human reviewer decides", func(t *testing.T) {
		code, body := call(reviewer, "POST", "/v1/approvals/"+a.ID+"/approve", `{"reason":"ok"}`)
		if code != 200 || !strings.Contains(body, `"approved"`) {
			t.Fatalf("reviewer approving: %d %s", code, body)
		}
	})
}

// TestPrintable: requester-controlled text in `approvals list` cannot
// drive the reviewer's terminal.
func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"CREATE FUNCTION f() AS 'DELETE FROM t'", "CREATE FUNCTION f() AS 'DELETE FROM t'"},
		{"a\nb\tc", `a\nb\tc`},
		{"safe\x1b[2K\rSELECT 1", `safe\u001b[2K\u000dSELECT 1`},
		{"x\u202eevil", `x\u202eevil`},
		{"\u009b31m", `\u009b31m`},
		{"café", "café"},
	}
	for _, tt := range tests {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
