package cli

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// forge is the attack of issue 10 on the gateway host's SQLite store:
// delete the first token issue, renumber, relink and rehash the rest, fix
// the head, and delete every checkpoint.
func forge(t *testing.T, dir string) {
	t.Helper()
	db, rebind := testenv.RawDB(t, "sqlite", filepath.Join(dir, ".gatehouse"))
	dropped := false
	testenv.ForgeAudit(t, db, rebind, func(_ int64, body []byte) []byte {
		if !dropped && bytes.Contains(body, []byte(`"kind":"token.issue"`)) {
			dropped = true
			return nil
		}
		return body
	})
	if !dropped {
		t.Fatal("no token.issue event to delete")
	}
	if _, err := db.Exec(`DELETE FROM audit_checkpoints`); err != nil {
		t.Fatal(err)
	}
}

func countCheckpoints(t *testing.T, dir string) int {
	t.Helper()
	db, _ := testenv.RawDB(t, "sqlite", filepath.Join(dir, ".gatehouse"))
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit_checkpoints`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuditVerifyDetectsRewrite runs the attack of issue 10 through the
// CLI: `audit verify` used to print "intact, 0 signed checkpoints" and the
// next admin command signed a checkpoint over the forgery. Now verify fails,
// the next command refuses to sign and says so, and an export taken before
// the attack still verifies offline while one taken after does not.
func TestAuditVerifyDetectsRewrite(t *testing.T) {
	dir := t.TempDir()
	starter(t, dir)
	g := gatehouse{t, dir}
	for _, agent := range []string{"a1", "a2", "a3"} {
		g.ok("token", "issue", "--agent", agent, "--scope", "read")
	}
	if out := g.ok("audit", "verify"); !strings.Contains(out, "intact") || !strings.Contains(out, "in checkpoint files") {
		t.Fatalf("verify before the attack: %s", out)
	}
	before := filepath.Join(dir, "before.jsonl")
	os.WriteFile(before, []byte(g.ok("audit", "export")), 0o600)

	forge(t, dir)
	r := g.run("audit", "verify")
	if r.code != 1 || !strings.Contains(r.stderr, "tampered") || !strings.Contains(r.stderr, "missing from the store") {
		t.Fatalf("verify of the forged log: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// The next command still works, but signs nothing over the forgery.
	r = g.run("token", "issue", "--agent", "a4", "--scope", "read")
	if r.code != 0 || !strings.Contains(r.stderr, "AUDIT LOG TAMPERING DETECTED") {
		t.Fatalf("next command: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if n := countCheckpoints(t, dir); n != 0 {
		t.Fatalf("the next command signed %d checkpoints over the forgery", n)
	}
	if r := g.run("audit", "verify"); r.code != 1 {
		t.Fatalf("verify after the next command: exit %d: %s", r.code, r.stdout)
	}

	if out := g.ok("audit", "verify", "--export", before); !strings.Contains(out, "intact") {
		t.Fatalf("offline verify of the export taken before the attack: %s", out)
	}
	after := filepath.Join(dir, "after.jsonl")
	os.WriteFile(after, []byte(g.ok("audit", "export")), 0o600)
	if r := g.run("audit", "verify", "--export", after); r.code != 1 || !strings.Contains(r.stderr, "tampered") {
		t.Fatalf("offline verify of the forged export: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := g.run("--gateway", "http://127.0.0.1:1", "--token", "x", "audit", "verify", "--export", after); r.code != exitBadInput {
		t.Fatalf("--export with --gateway: exit %d", r.code)
	}
}

// TestGatewayReportsForgedStore rewrites the store under a running gateway:
// its next audit commit finds the head is not the tree it holds; from then
// it is not ready, its metrics say it refuses to sign, and `audit verify`
// through its API fails.
func TestGatewayReportsForgedStore(t *testing.T) {
	dir := t.TempDir()
	api := startUp(t, dir)
	g := gatehouse{t, dir}
	admin := strings.TrimSpace(g.ok("token", "issue", "--user", "root@example.com", "--scope", "admin"))
	remote := func(args ...string) result {
		return g.run(append([]string{"--gateway", "http://" + api, "--token", admin}, args...)...)
	}
	for _, agent := range []string{"a1", "a2"} {
		if r := remote("token", "issue", "--agent", agent, "--scope", "read"); r.code != 0 {
			t.Fatalf("remote issue: %+v", r)
		}
	}
	forge(t, dir)
	if r := remote("token", "issue", "--agent", "a3", "--scope", "read"); r.code != 0 {
		t.Fatalf("remote issue after the attack: %+v", r)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + api + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := get("/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d after the store was forged", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, m := get("/metrics"); !strings.Contains(m, "gatehouse_audit_signing_refused 1") {
		t.Fatal("/metrics does not report the refusal")
	}
	if r := remote("audit", "verify"); r.code != 1 || !strings.Contains(r.stderr, "tampered") {
		t.Fatalf("remote verify: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
