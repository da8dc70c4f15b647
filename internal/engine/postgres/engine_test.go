package postgres_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/lib/pq"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect through the gateway: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func pgErr(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

func seed(h *harness) {
	h.exec(
		`CREATE TABLE users (id int PRIMARY KEY, name text, email text, card text, note text)`,
		`INSERT INTO users SELECT i, 'user'||i, 'user'||i||'@example.com', '4111 1111 1111 1111', 'order 12345-'||i FROM generate_series(1, 100) i`,
		`CREATE TABLE audit_me (id int)`,
	)
}

func TestPsqlThroughGateway(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	seed(h)
	out, err := exec.Command("psql", h.dsn(h.token("bot", "read")), "-At", "-c", "SELECT name FROM users WHERE id = 7").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "user7" {
		t.Fatalf("psql: %v: %s", err, out)
	}
	// A denied statement: psql prints the policy's message and exits 1.
	out, err = exec.Command("psql", h.dsn(h.token("bot", "read")), "-At", "-v", "ON_ERROR_STOP=1", "-c", "DELETE FROM users WHERE id = 1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no policy permits sql:delete") {
		t.Fatalf("psql delete with read scope: %v: %s", err, out)
	}
}

func TestGuardrails(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	seed(h)
	c := connect(t, h.dsn(h.token("bot", "admin")))
	ctx := context.Background()
	cases := []struct {
		name, sql, policy string
	}{
		{"drop table", "DROP TABLE users", "guard-drop"},
		{"truncate", "TRUNCATE users", "guard-truncate"},
		{"update without where", "UPDATE users SET note = 'x'", "guard-no-where"},
		{"delete without where", "DELETE FROM users", "guard-no-where"},
		{"alter drop column", "ALTER TABLE users DROP COLUMN note", "guard-alter-drop"},
		{"risky function", "SELECT pg_read_file('/etc/passwd')", "guard-risky-function"},
		{"copy program", "COPY users TO PROGRAM 'cat > /tmp/x'", "guard-copy-program"},
		{"set role", "SET ROLE postgres", "guard-session-identity"},
		{"mixed read write", "SELECT 1; DELETE FROM users WHERE id = 1", "guard-mixed-read-write"},
		{"delete hidden in a CTE", "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x", "guard-no-where"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Exec(ctx, tc.sql, pgx.QueryExecModeSimpleProtocol)
			pe := pgErr(err)
			if pe == nil || pe.Code != "42501" || !strings.Contains(pe.Message, tc.policy) {
				t.Fatalf("%s: err = %v, want 42501 naming %s", tc.sql, err, tc.policy)
			}
			// The session stays usable.
			var n int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil || n != 100 {
				t.Fatalf("after denial: n=%d err=%v", n, err)
			}
		})
	}
	// Allowed with admin scope: a targeted update.
	if _, err := c.Exec(ctx, "UPDATE users SET note = 'ok' WHERE id = 1"); err != nil {
		t.Fatalf("targeted update: %v", err)
	}
}

func TestScopes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	seed(h)
	ctx := context.Background()
	read := connect(t, h.dsn(h.token("reader", "read")))
	if _, err := read.Exec(ctx, "UPDATE users SET note = 'x' WHERE id = 1"); pgErr(err) == nil || pgErr(err).Code != "42501" {
		t.Fatalf("read scope update: %v", err)
	}
	if _, err := read.Exec(ctx, "CREATE TABLE t2 (id int)"); pgErr(err) == nil || pgErr(err).Code != "42501" {
		t.Fatalf("read scope ddl: %v", err)
	}
	write := connect(t, h.dsn(h.token("writer", "write")))
	if _, err := write.Exec(ctx, "INSERT INTO audit_me VALUES (1)"); err != nil {
		t.Fatalf("write scope insert: %v", err)
	}
	if _, err := write.Exec(ctx, "CREATE TABLE t3 (id int)"); pgErr(err) == nil {
		t.Fatal("write scope could run DDL")
	}
	if got := pgErr(func() error { _, err := write.Exec(ctx, "SELEC nonsense"); return err }()); got == nil || got.Code != "42501" {
		t.Fatalf("unparsable statement: %v, want denied", got)
	}
}

func TestAuthFailures(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	good := h.token("bot", "read")
	revoked := h.token("bot2", "read")
	c, _ := h.gw.Identity.Verify(context.Background(), revoked)
	if err := h.gw.Identity.Revoke(context.Background(), c.ID, c.ExpiresAt, "test"); err != nil {
		t.Fatal(err)
	}
	otherConn, _, _ := h.gw.Identity.Issue(context.Background(), identityReq("bot3", "other"))
	cases := []struct{ name, dsn, want string }{
		{"garbage token", h.dsn("not-a-token"), "28P01"},
		{"tampered token", h.dsn(good[:len(good)-4] + "AAAA"), "28P01"},
		{"revoked token", h.dsn(revoked), "28P01"},
		{"token for another connection", h.dsn(otherConn), "28P01"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pgx.Connect(context.Background(), tc.dsn)
			pe := pgErr(err)
			if pe == nil || pe.Code != tc.want || pe.Severity != "FATAL" {
				t.Fatalf("err = %v, want FATAL %s", err, tc.want)
			}
			if strings.Contains(pe.Message, good) || strings.Contains(pe.Message, h.password) {
				t.Fatal("error leaks a secret")
			}
		})
	}
	// An unknown connection name.
	_, err := pgx.Connect(context.Background(), strings.Replace(h.dsn(good), "pg:", "nosuch:", 1))
	if pe := pgErr(err); pe == nil || pe.Code != "28000" {
		t.Fatalf("unknown connection: %v", err)
	}
	// Audit has the failures (group commit: they land within moments).
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, err := h.gw.Admin.TailAudit(context.Background(), 50)
		if err != nil {
			t.Fatal(err)
		}
		failures := 0
		for _, e := range evs {
			if bytes.Contains(e, []byte(`"auth.failure"`)) {
				failures++
			}
			if bytes.Contains(e, []byte(good)) {
				t.Fatal("audit event contains a token")
			}
		}
		if failures >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit has %d auth failures, want >= 4", failures)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTLSRequiredOffLoopbackPolicy(t *testing.T) {
	h := newHarness(t, harnessOpts{noLoopback: true})
	tok := h.token("bot", "read")
	_, err := pgx.Connect(context.Background(), h.dsn(tok))
	if pe := pgErr(err); pe == nil || !strings.Contains(pe.Message, "TLS") {
		t.Fatalf("cleartext without TLS: %v", err)
	}
	c, err := pgx.Connect(context.Background(), h.dsn(tok, "sslmode", "require"))
	if err != nil {
		t.Fatalf("with TLS: %v", err)
	}
	defer c.Close(context.Background())
	var one int
	if err := c.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query over TLS: %v", err)
	}
}

func TestExtendedProtocolPipelineError(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	seed(h)
	c := connect(t, h.dsn(h.token("bot", "write")))
	ctx := context.Background()
	// One pipeline (one Sync): insert, a denied DDL, another insert. The
	// denied statement errors at its place, the implicit transaction rolls
	// back, and the connection resynchronises at Sync.
	// exec mode: each statement's Parse goes out in the same pipeline as
	// the others' Executes (the default mode prepares them all first).
	c = connect(t, h.dsn(h.token("bot", "write"), "default_query_exec_mode", "exec"))
	b := &pgx.Batch{}
	b.Queue("INSERT INTO audit_me VALUES ($1)", 1)
	b.Queue("CREATE TABLE evil (id int)")
	b.Queue("INSERT INTO audit_me VALUES ($1)", 2)
	br := c.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		t.Fatalf("first insert: %v", err)
	}
	_, err := br.Exec()
	if pe := pgErr(err); pe == nil || pe.Code != "42501" {
		t.Fatalf("denied DDL in pipeline: %v", err)
	}
	if _, err := br.Exec(); err == nil {
		t.Fatal("statement after the error ran")
	}
	br.Close()
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM audit_me").Scan(&n); err != nil {
		t.Fatalf("after pipeline error: %v", err)
	}
	if n != 0 {
		t.Fatalf("audit_me has %d rows: the implicit transaction was not rolled back", n)
	}
	// Prepared statements, reused.
	for i := range 5 {
		var name string
		if err := c.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", i+1).Scan(&name); err != nil || name != fmt.Sprintf("user%d", i+1) {
			t.Fatalf("prepared select %d: %q %v", i, name, err)
		}
	}
	// Explicit pipeline mode on pgconn with two Syncs.
	p := c.PgConn().StartPipeline(ctx)
	p.SendQueryParams("SELECT 1", nil, nil, nil, nil)
	p.SendQueryParams("DROP TABLE users", nil, nil, nil, nil)
	p.Sync()
	p.SendQueryParams("SELECT 2", nil, nil, nil, nil)
	p.Sync()
	var results []string
	for {
		r, err := p.GetResults()
		if err != nil {
			results = append(results, "err:"+errCode(err))
			continue
		}
		if r == nil {
			break
		}
		switch rr := r.(type) {
		case *pgconn.ResultReader:
			_, err := rr.Close()
			if err != nil {
				results = append(results, "err:"+errCode(err))
			} else {
				results = append(results, "ok")
			}
		case *pgconn.PipelineSync:
			results = append(results, "sync")
		}
		if len(results) > 10 {
			break
		}
	}
	if err := p.Close(); err != nil && errCode(err) == "" {
		t.Fatalf("pipeline close: %v", err)
	}
	got := strings.Join(results, ",")
	if !strings.HasPrefix(got, "ok,err:42501") || !strings.Contains(got, "sync,ok,sync") {
		t.Fatalf("pipeline results %s", got)
	}
}

func errCode(err error) string {
	if pe := pgErr(err); pe != nil {
		return pe.Code
	}
	return ""
}

func TestCopyBothWays(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.exec(`CREATE TABLE items (id int, label text)`)
	c := connect(t, h.dsn(h.token("loader", "write")))
	ctx := context.Background()
	rows := [][]any{}
	for i := range 5000 {
		rows = append(rows, []any{i, fmt.Sprintf("item %d", i)})
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id", "label"}, pgx.CopyFromRows(rows))
	if err != nil || n != 5000 {
		t.Fatalf("COPY FROM STDIN: %d %v", n, err)
	}
	var buf bytes.Buffer
	tag, err := c.PgConn().CopyTo(ctx, &buf, "COPY items TO STDOUT")
	if err != nil || tag.RowsAffected() != 5000 || strings.Count(buf.String(), "\n") != 5000 {
		t.Fatalf("COPY TO STDOUT: %v %v", tag, err)
	}
	// psql's \copy uses COPY FROM STDIN too.
	out, err := exec.Command("psql", h.dsn(h.token("loader", "write")), "-c", `\copy items FROM STDIN`).CombinedOutput()
	_ = out
	if err != nil {
		t.Fatalf("psql \\copy: %v: %s", err, out)
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := connect(t, h.dsn(h.token("bot", "read")))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, "SELECT pg_sleep(30)")
	if err == nil {
		t.Fatal("pg_sleep(30) finished")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("cancel took %v", time.Since(start))
	}
	// pgx closes the connection on context cancel; a fresh one works.
	c2 := connect(t, h.dsn(h.token("bot", "read")))
	var one int
	if err := c2.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	// The cancel really reached the upstream: lib/pq waits for the error.
	db, _ := sql.Open("postgres", h.dsn(h.token("bot", "read")))
	defer db.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	_, err = db.ExecContext(ctx2, "SELECT pg_sleep(30)")
	if err == nil || time.Since(start) > 20*time.Second {
		t.Fatalf("lib/pq cancel: %v", err)
	}
}

func TestListenNotify(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	l := connect(t, h.dsn(h.token("listener", "read")))
	ctx := context.Background()
	if _, err := l.Exec(ctx, "LISTEN jobs"); err != nil {
		t.Fatalf("LISTEN: %v", err)
	}
	n := connect(t, h.dsn(h.token("notifier", "write")))
	if _, err := n.Exec(ctx, "NOTIFY jobs, 'job 42 ready'"); err != nil {
		t.Fatalf("NOTIFY: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	note, err := l.WaitForNotification(wctx)
	if err != nil || note.Channel != "jobs" || note.Payload != "job 42 ready" {
		t.Fatalf("notification: %+v %v", note, err)
	}
}

func TestMasking(t *testing.T) {
	rules := `
detectors:
  default: redact
columns:
  - column: "pg/public.users.name"
    strategy: redact
    detector: email
  - column: "*.users.card"
    strategy: partial
    detector: card
`
	h := newHarness(t, harnessOpts{maskRules: rules})
	seed(h)
	c := connect(t, h.dsn(h.token("bot", "read")))
	ctx := context.Background()
	var name, email, card, note string
	// Extended protocol (pgx prepares and describes).
	err := c.QueryRow(ctx, "SELECT name, email, card, note FROM users WHERE id = $1", 3).Scan(&name, &email, &card, &note)
	if err != nil {
		t.Fatal(err)
	}
	if name == "user3" || !strings.Contains(email, "REDACTED") || strings.Contains(card, "4111 1111 1111") || !strings.HasSuffix(card, "1111") {
		t.Fatalf("masked row = %q %q %q", name, email, card)
	}
	if note != "order 12345-3" {
		t.Fatalf("clean value changed: %q", note)
	}
	// Aliases do not escape column rules; simple protocol too.
	err = c.QueryRow(ctx, "SELECT name AS n FROM users WHERE id = 3", pgx.QueryExecModeSimpleProtocol).Scan(&name)
	if err != nil || name == "user3" {
		t.Fatalf("aliased column: %q %v", name, err)
	}
	// Detector on a computed value with no table.
	var s string
	if err := c.QueryRow(ctx, "SELECT 'mail me at bob@example.org'").Scan(&s); err != nil || strings.Contains(s, "bob@example.org") {
		t.Fatalf("computed value: %q %v", s, err)
	}
	// COPY TO is masked too.
	var buf bytes.Buffer
	if _, err := c.PgConn().CopyTo(ctx, &buf, "COPY (SELECT email FROM users) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "@example.com") {
		t.Fatal("COPY TO leaked emails")
	}
	// A column rule on a binary-format column: pgx asks for int4 in binary.
	rules2 := h // keep h alive
	_ = rules2
}

func TestLargeResultStreamsWithFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a million rows")
	}
	h := newHarness(t, harnessOpts{})
	c := connect(t, h.dsn(h.token("bot", "read")))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	rows, err := c.Query(context.Background(), "SELECT i, md5(i::text) FROM generate_series(1, 1000000) i", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	close(stop)
	if err := rows.Err(); err != nil || n != 1000000 {
		t.Fatalf("rows %d err %v", n, err)
	}
	growth := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("heap in use grew by at most %d KiB while streaming 1M rows (~45 MB of data)", growth/1024)
	if growth > 32<<20 {
		t.Fatalf("heap grew %d MiB: the result is being buffered", growth>>20)
	}
}

func TestMalformedMessageEndsOnlyThatSession(t *testing.T) {
	h := newHarness(t, harnessOpts{maxMessage: 1 << 20})
	other := connect(t, h.dsn(h.token("bystander", "read")))
	// A raw client: startup, password, then a Query claiming 2 GiB.
	conn, err := net.Dial("tcp", h.pgAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fe := pgconnFrontend(conn)
	if err := fe.startup(h.db, h.token("raw", "read")); err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})
	msg, err := fe.readError()
	if err != nil || !strings.Contains(msg, "exceeds") {
		t.Fatalf("oversized message: %q %v", msg, err)
	}
	var one int
	if err := other.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("other session hurt: %v", err)
	}
}
