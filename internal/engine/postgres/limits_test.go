package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"
)

// Every test client is on 127.0.0.1; the rest of 127.0.0.0/8 reaches the
// same loopback listener, so binding the client end to 127.0.0.2, .3, ...
// makes distinct sources for the per-source cap.

func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connectFrom opens a pgx session through the gateway from a local address.
func connectFrom(local, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	cfg.DialFunc = d.DialContext
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

func mustConnectFrom(t *testing.T, local, dsn string) *pgx.Conn {
	t.Helper()
	c, err := connectFrom(local, dsn)
	if err != nil {
		t.Fatalf("connect from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// wantFatal checks err is FATAL code with exactly msg.
func wantFatal(t *testing.T, err error, code, msg string) {
	t.Helper()
	pe := pgErr(err)
	if pe == nil || pe.Severity != "FATAL" || pe.Code != code || pe.Message != msg {
		t.Fatalf("err = %v, want FATAL %s %q", err, code, msg)
	}
}

// readFatal reads what the gateway sends a raw connection until it closes
// it, and returns the ErrorResponse among it.
func readFatal(t *testing.T, c net.Conn) *pgproto3.ErrorResponse {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(c, io.Discard)
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("connection ended without an ErrorResponse: %v", err)
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			if _, err := fe.Receive(); err == nil {
				t.Fatal("connection still open after its FATAL")
			}
			return e
		}
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric reads one sample of the gateway's registry (0 when absent).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// connectInternal opens a session the way the MCP engine's SQL tools do:
// over an in-memory pipe to Engine.ServeInternal, the token as password.
func connectInternal(h *harness, token string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("host=gatehouse port=5432 sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password, cfg.Database = "pg", token, h.db
	cfg.Fallbacks = nil
	cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return []string{host}, nil }
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		client, server := net.Pipe()
		go h.gw.Postgres.ServeInternal(context.Background(), server)
		return client, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

func query(t *testing.T, c *pgx.Conn) {
	t.Helper()
	var name string
	if err := c.QueryRow(context.Background(), "SELECT name FROM users WHERE id = 7").Scan(&name); err != nil || name != "user7" {
		t.Fatalf("query: %q, %v", name, err)
	}
}

// TestUnauthenticatedCapPerSource: idle connections that never present a
// token fill only their own source's slots: the next one from that address
// is refused at once with FATAL 53300, another address is served, and an
// authenticated session stops counting.
func TestUnauthenticatedCapPerSource(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "limits: {unauthenticated: 100, unauthenticated_per_source: 3}\n"})
	seed(h)
	dsn := h.dsn(h.token("bot", "read"))
	var idle []net.Conn
	for range 3 {
		idle = append(idle, dialFrom(t, "127.0.0.1", h.pgAddr))
	}
	waitFor(t, "3 unauthenticated", func() bool { return h.gw.Postgres.Unauthenticated() == 3 })

	const msg = "gatehouse: too many connections from this address awaiting authentication (limit 3 per source)"
	_, err := connectFrom("127.0.0.1", dsn)
	wantFatal(t, err, "53300", msg)
	if e := readFatal(t, dialFrom(t, "127.0.0.1", h.pgAddr)); e.Code != "53300" || e.Message != msg {
		t.Fatalf("raw connection over the cap: %s %q", e.Code, e.Message)
	}
	query(t, mustConnectFrom(t, "127.0.0.2", dsn))

	// One idle connection goes: its slot is free again.
	idle[0].Close()
	waitFor(t, "the slot to be freed", func() bool { return h.gw.Postgres.Unauthenticated() == 2 })
	authed := mustConnectFrom(t, "127.0.0.1", dsn)
	// The authenticated session holds no unauthenticated slot: one more
	// idle connection fits beside the two, and only the next is refused.
	dialFrom(t, "127.0.0.1", h.pgAddr)
	waitFor(t, "3 unauthenticated", func() bool { return h.gw.Postgres.Unauthenticated() == 3 })
	if e := readFatal(t, dialFrom(t, "127.0.0.1", h.pgAddr)); e.Code != "53300" {
		t.Fatalf("over the cap again: %s %q", e.Code, e.Message)
	}
	query(t, authed)
	if n := metric(t, h.gw.Metrics.Registry, "gatehouse_connections_refused_total", map[string]string{"listener": "postgres", "reason": "unauthenticated_per_source"}); n != 3 {
		t.Fatalf("refusals counted: %v, want 3", n)
	}
}

// TestUnauthenticatedCapTotal: idle connections from many sources fill the
// listener's total, and then any source is refused.
func TestUnauthenticatedCapTotal(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "limits: {unauthenticated: 3, unauthenticated_per_source: 3}\n"})
	seed(h)
	dsn := h.dsn(h.token("bot", "read"))
	var idle []net.Conn
	for _, src := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		idle = append(idle, dialFrom(t, src, h.pgAddr))
	}
	waitFor(t, "3 unauthenticated", func() bool { return h.gw.Postgres.Unauthenticated() == 3 })
	_, err := connectFrom("127.0.0.4", dsn)
	wantFatal(t, err, "53300", "gatehouse: too many connections awaiting authentication (limit 3 in total)")
	for _, c := range idle {
		c.Close()
	}
	waitFor(t, "the slots to be freed", func() bool { return h.gw.Postgres.Unauthenticated() == 0 })
	query(t, mustConnectFrom(t, "127.0.0.4", dsn))
}

// TestHandshakeDeadline: a connection that has not presented its token
// within limits.handshake_timeout is closed, however it spends the time:
// silent, stalled after the startup packet, stalled in TLS, or trickling
// bytes (the deadline is one for the whole exchange, not per read).
func TestHandshakeDeadline(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "limits: {handshake_timeout: 500ms}\n"})
	seed(h)
	startup, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "pg", "database": h.db}}).Encode(nil)
	sslRequest, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	const msg = "gatehouse: the startup exchange did not finish within 500ms"
	for _, tc := range []struct {
		name string
		// act is what the client does; it returns once it starts idling.
		act func(t *testing.T, c net.Conn)
		// fatal: the gateway says why before closing (not inside TLS).
		fatal bool
	}{
		{"silent", func(t *testing.T, c net.Conn) {}, true},
		{"startup then no password", func(t *testing.T, c net.Conn) {
			c.Write(startup)
			m, err := pgproto3.NewFrontend(c, io.Discard).Receive()
			if _, ok := m.(*pgproto3.AuthenticationCleartextPassword); !ok {
				t.Fatalf("after startup: %T %v", m, err)
			}
		}, true},
		{"TLS requested, no handshake", func(t *testing.T, c net.Conn) {
			c.Write(sslRequest)
			b := make([]byte, 1)
			if _, err := io.ReadFull(c, b); err != nil || b[0] != 'S' {
				t.Fatalf("SSLRequest answer %q, %v", b, err)
			}
		}, false},
		{"trickle", func(t *testing.T, c net.Conn) {
			go func() {
				for _, b := range startup {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := metric(t, h.gw.Metrics.Registry, "gatehouse_connections_refused_total", map[string]string{"listener": "postgres", "reason": "handshake_timeout"})
			start := time.Now()
			c := dialFrom(t, "127.0.0.1", h.pgAddr)
			tc.act(t, c)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			rest, err := io.ReadAll(c)
			took := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %s", took)
			}
			if took < 400*time.Millisecond || took > 5*time.Second {
				t.Fatalf("closed after %s, want about 500ms", took)
			}
			if tc.fatal != strings.Contains(string(rest), msg) {
				t.Fatalf("gateway sent %q before closing (want the deadline's FATAL: %v)", rest, tc.fatal)
			}
			waitFor(t, "the timeout to be counted", func() bool {
				return metric(t, h.gw.Metrics.Registry, "gatehouse_connections_refused_total", map[string]string{"listener": "postgres", "reason": "handshake_timeout"}) == before+1
			})
			waitFor(t, "the slot to be freed", func() bool { return h.gw.Postgres.Unauthenticated() == 0 })
		})
	}
	// A client that does its part in time is unaffected.
	query(t, connect(t, h.dsn(h.token("bot", "read"))))
}

// TestSessionCaps: authenticated sessions are capped per principal and in
// total with FATAL 53300 naming the limit; the refusal is audited, the
// sessions already open keep working, and a slot comes back when its
// session ends, including on every failed path after authentication.
func TestSessionCaps(t *testing.T) {
	// The connection serves a database that does not exist, so that an
	// upstream refusal can be provoked after the token was verified.
	h := newHarness(t, harnessOpts{extraConfig: "limits: {sessions: 3, sessions_per_principal: 2}\n", connExtra: "    databases: [no_such_db_gh]\n"})
	seed(h)
	ctx := context.Background()
	tokA := h.token("agent-a", "read")
	a1, a2 := connect(t, h.dsn(tokA)), connect(t, h.dsn(tokA))
	_, err := pgx.Connect(ctx, h.dsn(tokA))
	wantFatal(t, err, "53300", `gatehouse: too many sessions for Agent::"agent-a" (limit 2 per principal)`)
	// The MCP tools' in-process SQL sessions count under the same caps.
	_, err = connectInternal(h, tokA)
	wantFatal(t, err, "53300", `gatehouse: too many sessions for Agent::"agent-a" (limit 2 per principal)`)

	b1 := connect(t, h.dsn(h.token("agent-b", "read")))
	tokC := h.token("agent-c", "read")
	_, err = pgx.Connect(ctx, h.dsn(tokC))
	wantFatal(t, err, "53300", "gatehouse: too many sessions on this gateway (limit 3 in total)")
	for _, c := range []*pgx.Conn{a1, a2, b1} {
		query(t, c)
	}
	if n := h.gw.Pipeline.OpenSessions(); n != 3 {
		t.Fatalf("open sessions = %d, want 3", n)
	}

	// A session that ends gives its slot back.
	a1.Close(ctx)
	waitFor(t, "a slot to be freed", func() bool { return h.gw.Pipeline.OpenSessions() == 2 })
	c1 := connect(t, h.dsn(tokC))
	query(t, c1)
	a2.Close(ctx)
	b1.Close(ctx)
	c1.Close(ctx)
	waitFor(t, "every slot to be freed", func() bool { return h.gw.Pipeline.OpenSessions() == 0 })

	// Failures after the token was verified leak no slot: connect denied
	// by policy (no scope), and an upstream that refuses (no such
	// database). Three of each, more than the per-principal cap.
	tokD := h.token("agent-d")
	tokE := h.token("agent-e", "read")
	for range 3 {
		_, err := pgx.Connect(ctx, h.dsn(tokD))
		if pe := pgErr(err); pe == nil || pe.Code != "28000" {
			t.Fatalf("connect without scope: %v", err)
		}
		_, err = pgx.Connect(ctx, strings.Replace(h.dsn(tokE), "/"+h.db, "/no_such_db_gh", 1))
		// The upstream's own answer, SQLSTATE kept (issue 12).
		if pe := pgErr(err); pe == nil || pe.Code != "3D000" || pe.Message != `database "no_such_db_gh" does not exist` {
			t.Fatalf("connect to a missing database: %v", err)
		}
	}
	// (The client may read its FATAL before the session's goroutine has
	// returned: wait, but a leaked slot never comes back.)
	waitFor(t, "no slot held after failed connects", func() bool { return h.gw.Pipeline.OpenSessions() == 0 })
	e1, e2 := connect(t, h.dsn(tokE)), connect(t, h.dsn(tokE))
	query(t, e1)
	query(t, e2)
	if n := metric(t, h.gw.Metrics.Registry, "gatehouse_sessions_open", nil); n != 2 {
		t.Fatalf("gatehouse_sessions_open = %v, want 2", n)
	}
	// An in-process session is refused at the cap as well, fits once a
	// slot is free, and gives it back when it ends.
	in, err := connectInternal(h, tokE)
	wantFatal(t, err, "53300", `gatehouse: too many sessions for Agent::"agent-e" (limit 2 per principal)`)
	e1.Close(ctx)
	waitFor(t, "a slot to be freed", func() bool { return h.gw.Pipeline.OpenSessions() == 1 })
	if in, err = connectInternal(h, tokE); err != nil {
		t.Fatalf("in-process session once a slot is free: %v", err)
	}
	query(t, in)
	in.Close(ctx)
	e2.Close(ctx)
	waitFor(t, "every slot to be freed", func() bool { return h.gw.Pipeline.OpenSessions() == 0 })
	for limit, want := range map[string]float64{"per_principal": 3, "total": 1} {
		if n := metric(t, h.gw.Metrics.Registry, "gatehouse_sessions_refused_total", map[string]string{"limit": limit}); n != want {
			t.Fatalf("sessions refused (%s) = %v, want %v", limit, n, want)
		}
	}

	// Each refusal is an audit event: a connect denied for the limit.
	waitFor(t, "the refusals in the audit log", func() bool {
		evs, err := h.gw.Admin.TailAudit(ctx, 200)
		if err != nil {
			t.Fatal(err)
		}
		refused := map[string]int{}
		for _, e := range evs {
			s := string(e)
			if !strings.Contains(s, `"decision":"deny"`) || !strings.Contains(s, `"action":"connect"`) {
				continue
			}
			for _, who := range []string{"agent-a", "agent-c", "agent-e"} {
				for _, limit := range []string{"per_principal", "total"} {
					if strings.Contains(s, `"limit":"`+limit+`"`) && strings.Contains(s, who) {
						refused[who+" "+limit]++
					}
				}
			}
		}
		return len(refused) == 3 && refused["agent-a per_principal"] == 2 && refused["agent-c total"] == 1 && refused["agent-e per_principal"] == 1
	})
}
