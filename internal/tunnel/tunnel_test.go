package tunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/hashicorp/yamux"
)

// fakeDialer stands in for agent.Agent: each dial gets an in-memory
// "upstream" driven by upstream.
type fakeDialer struct {
	name     string
	upstream func(c net.Conn)
	dials    atomic.Int64
	cancels  chan uint32
}

func (f *fakeDialer) DialPostgres(ctx context.Context, conn string, p agent.PostgresParams) (*agent.PostgresConn, error) {
	if conn != "pg" {
		return nil, fmt.Errorf("%w: %q", agent.ErrUnknownConnection, conn)
	}
	if p.Database == "refuse" {
		return nil, errors.New("upstream pg: password authentication failed")
	}
	if p.Database == "nosuchdb" {
		return nil, &agent.DialError{Connection: conn, Reason: agent.ReasonUpstream, Code: "3D000", Message: `database "nosuchdb" does not exist`,
			Err: errors.New(`upstream pg: server error: FATAL: database "nosuchdb" does not exist (SQLSTATE 3D000)`)}
	}
	f.dials.Add(1)
	gw, up := net.Pipe()
	fn := f.upstream
	if fn == nil {
		fn = func(c net.Conn) { io.Copy(c, c); c.Close() }
	}
	go fn(up)
	return &agent.PostgresConn{Conn: gw, PID: 42, SecretKey: []byte{1, 2, 3, 4},
		ParameterStatus: map[string]string{"server_version": "17.0", "served_by": f.name, "db": p.Database}, TxStatus: 'I'}, nil
}

func (f *fakeDialer) CancelPostgres(ctx context.Context, conn string, pid uint32, secret []byte) error {
	if f.cancels != nil {
		f.cancels <- pid
	}
	return nil
}

type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

// find waits up to d for an event of kind for agent name.
func (e *events) find(t *testing.T, kind, name string, d time.Duration) Event {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		for _, ev := range e.evs {
			if ev.Kind == kind && ev.Agent == name {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s event for %s within %s", kind, name, d)
	return Event{}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newServer builds a gateway side with an SQLite store and a CA.
func newServer(t *testing.T) (*Server, store.Store, *events) {
	t.Helper()
	st := testenv.OpenStore(t, "sqlite", t.TempDir())
	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	s := &Server{CA: ca, Store: st, Registry: NewRegistry(testLogger(t), 2*time.Second), Logger: testLogger(t),
		OnEvent: ev.add, Node: "test", Heartbeat: 100 * time.Millisecond, RevocationPoll: 50 * time.Millisecond}
	return s, st, ev
}

// listen runs s on a loopback listener until the test ends.
func listen(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// running is a Client.Run in progress.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// stop ends Run and returns its error.
func (r *running) stop() error {
	r.cancel()
	return r.wait(10 * time.Second)
}

// wait waits for Run to return by itself.
func (r *running) wait(d time.Duration) error {
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		return errors.New("client did not stop")
	}
}

// runClient runs c until the test ends.
func runClient(t *testing.T, c *Client) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = c.Run(ctx)
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func localClient(s *Server, name string, d agent.Dialer) *Client {
	return &Client{Name: name, Version: "test", Dialer: d, Connections: []ConnInfo{{Name: "pg", Type: "postgres", Database: "app"}},
		Connect: s.LocalConnect(name), MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
}

func waitAgents(t *testing.T, r *Registry, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.Agents()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("registry has %d agents, want %d", len(r.Agents()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dial(t *testing.T, r *Registry) *agent.PostgresConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pc, err := r.DialPostgres(ctx, "pg", agent.PostgresParams{Database: "app"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return pc
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}

// TestDialThroughTunnel: a dial returns the agent's key data and
// parameters, then relays bytes; refusals and unknown connections come
// back as errors, and the known connection is looked up with its default
// database.
func TestDialThroughTunnel(t *testing.T) {
	s, _, _ := newServer(t)
	runClient(t, localClient(s, "a", &fakeDialer{name: "a"}))
	waitAgents(t, s.Registry, 1)
	if c, ok := s.Registry.Lookup("pg", "postgres"); !ok || c.Database != "app" {
		t.Fatalf("lookup pg = %+v %v", c, ok)
	}
	if _, ok := s.Registry.Lookup("pg", "mysql"); ok {
		t.Fatal("pg found as mysql")
	}
	if cs := s.Registry.Connections("postgres"); len(cs) != 1 || cs[0].Name != "pg" || cs[0].Database != "app" {
		t.Fatalf("connections = %+v", cs)
	}
	pc := dial(t, s.Registry)
	defer pc.Conn.Close()
	if pc.PID != 42 || !bytes.Equal(pc.SecretKey, []byte{1, 2, 3, 4}) || pc.TxStatus != 'I' || pc.ParameterStatus["db"] != "app" {
		t.Fatalf("conn = %+v", pc)
	}
	echo(t, pc.Conn, "hello through the tunnel")

	ctx := context.Background()
	if _, err := s.Registry.DialPostgres(ctx, "pg", agent.PostgresParams{Database: "refuse"}); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("refused dial: %v", err)
	}
	if _, err := s.Registry.DialPostgres(ctx, "other", agent.PostgresParams{}); !errors.Is(err, agent.ErrNoAgent) {
		t.Fatalf("dial of a connection nobody serves: %v", err)
	}
	// What the agent may tell the client crosses the tunnel intact.
	_, err := s.Registry.DialPostgres(ctx, "pg", agent.PostgresParams{Database: "nosuchdb"})
	var de *agent.DialError
	if !errors.As(err, &de) || de.Reason != agent.ReasonUpstream || de.Code != "3D000" || de.Message != `database "nosuchdb" does not exist` {
		t.Fatalf("upstream refusal through the tunnel: %#v (%v)", de, err)
	}
}

// TestNoAgentFailsFastOnRetry: with no agent serving a connection, a dial
// waits dial_wait for one and then says which connection lacks an agent.
// On main a client that retried at once (psql does, without TLS) waited
// the whole dial_wait again; now the retry fails at once until an agent
// registers.
func TestNoAgentFailsFastOnRetry(t *testing.T) {
	r := NewRegistry(testLogger(t), 300*time.Millisecond)
	r.Remember([]ConnInfo{{Name: "pg", Type: "postgres"}})
	ctx := context.Background()
	for i, want := range []time.Duration{300 * time.Millisecond, 0} {
		start := time.Now()
		_, err := r.DialPostgres(ctx, "pg", agent.PostgresParams{})
		took := time.Since(start)
		var de *agent.DialError
		if !errors.As(err, &de) || de.Reason != agent.ReasonNoAgent || de.Message != "gatehouse: no agent serving connection pg is connected" || !errors.Is(err, agent.ErrNoAgent) {
			t.Fatalf("dial %d: %#v (%v)", i, de, err)
		}
		if took < want || took > want+200*time.Millisecond {
			t.Fatalf("dial %d took %s, want about %s", i, took, want)
		}
	}
}

// TestRoutingSpreadsAndFailsOver: two agents serve one connection; new
// sessions alternate between them, and when one goes, sessions on it end
// with ErrAgentLost and new ones go to the other.
func TestRoutingSpreadsAndFailsOver(t *testing.T) {
	s, _, _ := newServer(t)
	da, db := &fakeDialer{name: "a"}, &fakeDialer{name: "b"}
	clientA := runClient(t, localClient(s, "a", da))
	runClient(t, localClient(s, "b", db))
	waitAgents(t, s.Registry, 2)

	var onA *agent.PostgresConn
	for range 6 {
		pc := dial(t, s.Registry)
		if pc.ParameterStatus["served_by"] == "a" && onA == nil {
			onA = pc
			continue
		}
		defer pc.Conn.Close()
	}
	if da.dials.Load() != 3 || db.dials.Load() != 3 {
		t.Fatalf("dials a=%d b=%d, want 3 each", da.dials.Load(), db.dials.Load())
	}

	clientA.stop()
	start := time.Now()
	onA.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := onA.Conn.Read(make([]byte, 1))
	if !errors.Is(err, agent.ErrAgentLost) || !strings.Contains(err.Error(), "agent a went away") {
		t.Fatalf("read on a session of a stopped agent: %v, want ErrAgentLost naming a", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("agent loss noticed after %s", d)
	}
	waitAgents(t, s.Registry, 1)
	for range 3 {
		pc := dial(t, s.Registry)
		if pc.ParameterStatus["served_by"] != "b" {
			t.Fatalf("after a went away, a session went to %s", pc.ParameterStatus["served_by"])
		}
		pc.Conn.Close()
	}
}

// TestDialWaitsForReconnect: a dial made while no agent serves the
// connection waits (up to dial_wait) for one to connect.
func TestDialWaitsForReconnect(t *testing.T) {
	s, _, _ := newServer(t)
	go func() {
		time.Sleep(300 * time.Millisecond)
		runClient(t, localClient(s, "late", &fakeDialer{name: "late"}))
	}()
	pc := dial(t, s.Registry)
	pc.Conn.Close()
}

// TestCancelGoesToHoldingAgent: a cancel request reaches the agent that
// holds the backend, not another agent serving the connection.
func TestCancelGoesToHoldingAgent(t *testing.T) {
	s, _, _ := newServer(t)
	da := &fakeDialer{name: "a", cancels: make(chan uint32, 1)}
	db := &fakeDialer{name: "b", cancels: make(chan uint32, 1)}
	runClient(t, localClient(s, "a", da))
	runClient(t, localClient(s, "b", db))
	waitAgents(t, s.Registry, 2)
	for range 2 {
		pc := dial(t, s.Registry)
		defer pc.Conn.Close()
		want := da
		if pc.ParameterStatus["served_by"] == "b" {
			want = db
		}
		if err := s.Registry.CancelPostgres(context.Background(), "pg", pc.PID, pc.SecretKey); err != nil {
			t.Fatal(err)
		}
		select {
		case pid := <-want.cancels:
			if pid != 42 {
				t.Fatalf("cancel pid %d", pid)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("cancel did not reach agent %s", want.name)
		}
	}
}

// TestFlowControl: when the gateway side stops reading, the agent stops
// reading the upstream after about one stream window, so a slow client
// cannot grow memory without bound; everything arrives once it reads.
func TestFlowControl(t *testing.T) {
	s, _, _ := newServer(t)
	var written atomic.Int64
	const total = 8 << 20
	d := &fakeDialer{name: "a", upstream: func(c net.Conn) {
		chunk := bytes.Repeat([]byte{'x'}, 16<<10)
		for written.Load() < total {
			n, err := c.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
		c.Close()
	}}
	runClient(t, localClient(s, "a", d))
	waitAgents(t, s.Registry, 1)
	pc := dial(t, s.Registry)
	defer pc.Conn.Close()
	time.Sleep(500 * time.Millisecond)
	// One window in the gateway's stream buffer plus the agent's copy
	// buffer; nothing like the 8 MiB the upstream would send.
	if w := written.Load(); w > streamWindow+256<<10 {
		t.Fatalf("upstream wrote %d bytes to a reader that reads nothing (window %d)", w, streamWindow)
	}
	n, err := io.Copy(io.Discard, pc.Conn)
	if err != nil || n < total {
		t.Fatalf("read %d bytes, %v; want %d", n, err, total)
	}
}

// TestLargeTransfer: no frame or message cap applies to relayed bytes.
func TestLargeTransfer(t *testing.T) {
	s, _, _ := newServer(t)
	runClient(t, localClient(s, "a", &fakeDialer{name: "a"}))
	waitAgents(t, s.Registry, 1)
	pc := dial(t, s.Registry)
	defer pc.Conn.Close()
	payload := make([]byte, 24<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	go pc.Conn.Write(payload) // one 24 MiB write
	h := sha256.New()
	if _, err := io.CopyN(h, pc.Conn, int64(len(payload))); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(payload); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("payload corrupted")
	}
}

// TestEnrollConnectRevoke: a token enrolls once; the agent connects with
// mTLS and serves dials; revocation cuts the live tunnel at once and the
// agent stops (fatal) instead of retrying.
func TestEnrollConnectRevoke(t *testing.T) {
	s, st, ev := newServer(t)
	addr := listen(t, s)
	tok, rec := NewEnrollToken("a1", s.CA, time.Now(), time.Minute)
	if err := st.PutEnrollToken(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	id := Identity{Dir: t.TempDir()}
	ctx := context.Background()
	if err := Enroll(ctx, addr, "other", tok, Identity{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "unknown enrollment token") {
		t.Fatalf("token used for another name: %v", err)
	}
	if err := Enroll(ctx, addr, "a1", tok, id); err != nil {
		t.Fatalf("enroll: %v", err)
	}
	ev.find(t, EventEnroll, "a1", time.Second)
	if err := Enroll(ctx, addr, "a1", tok, Identity{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second use of a token: %v", err)
	}
	fi, err := os.Stat(filepath.Join(id.Dir, identityFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}

	c := &Client{Name: "a1", Version: "v9", Dialer: &fakeDialer{name: "a1"}, Connections: []ConnInfo{{Name: "pg", Type: "postgres"}},
		Connect: RemoteConnect(addr, id), Identity: &id, MinBackoff: 10 * time.Millisecond}
	client := runClient(t, c)
	waitAgents(t, s.Registry, 1)
	if e := ev.find(t, EventConnect, "a1", time.Second); e.Decision != "allow" {
		t.Fatalf("connect event %+v", e)
	}
	pc := dial(t, s.Registry)
	echo(t, pc.Conn, "over mTLS")
	// The heartbeat reaches the store for `agents list`.
	deadline := time.Now().Add(3 * time.Second)
	for {
		a, err := st.GetAgent(ctx, "a1")
		if err == nil && a.Version == "v9" && len(a.Connections) == 1 && !a.LastSeen.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent row not updated: %+v %v", a, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := st.RevokeAgent(ctx, "a1", time.Now()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pc.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := pc.Conn.Read(make([]byte, 1)); !errors.Is(err, agent.ErrAgentLost) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("session after revocation: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("revocation took %s to cut the tunnel", d)
	}
	if e := ev.find(t, EventDisconnect, "a1", time.Second); e.Reason != "revoked" {
		t.Fatalf("disconnect event %+v", e)
	}
	var fe *FatalError
	if err := client.wait(5 * time.Second); !errors.As(err, &fe) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("agent after revocation: %v, want a fatal refusal", err)
	}
}

// TestEnrollRejectsWrongCA: a token pins the CA, so an agent will not
// enroll with (and hand its token to) a gateway with another CA.
func TestEnrollRejectsWrongCA(t *testing.T) {
	s, st, _ := newServer(t)
	addr := listen(t, s)
	other, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	tok, rec := NewEnrollToken("a1", other, time.Now(), time.Minute)
	st.PutEnrollToken(context.Background(), rec)
	if err := Enroll(context.Background(), addr, "a1", tok, Identity{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("enroll against the wrong CA: %v", err)
	}
	for _, bad := range []string{"", "ghe1.x.y.z", strings.Replace(tok, "ghe1.", "ghe2.", 1)} {
		var ee *EnrollError
		if err := Enroll(context.Background(), addr, "a1", bad, Identity{Dir: t.TempDir()}); !errors.As(err, &ee) {
			t.Fatalf("malformed token %q: %v", bad, err)
		}
	}
}

// TestCertificateRenewal: past two thirds of its life the agent renews its
// certificate over the tunnel (same epoch, new key and expiry), and the
// renewed certificate connects.
func TestCertificateRenewal(t *testing.T) {
	s, st, ev := newServer(t)
	s.CertTTL = 3 * time.Second
	addr := listen(t, s)
	tok, rec := NewEnrollToken("r1", s.CA, time.Now(), time.Minute)
	st.PutEnrollToken(context.Background(), rec)
	id := Identity{Dir: t.TempDir()}
	if err := Enroll(context.Background(), addr, "r1", tok, id); err != nil {
		t.Fatal(err)
	}
	first, _ := id.Leaf()
	c := &Client{Name: "r1", Dialer: &fakeDialer{}, Connect: RemoteConnect(addr, id), Identity: &id, MinBackoff: 10 * time.Millisecond}
	client := runClient(t, c)
	ev.find(t, EventRenew, "r1", 5*time.Second)
	deadline := time.Now().Add(2 * time.Second)
	var renewed *x509.Certificate
	for {
		l, err := id.Leaf()
		if err == nil && l.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = l
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("certificate not renewed on disk")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !renewed.NotAfter.After(first.NotAfter) || renewed.Subject.SerialNumber != first.Subject.SerialNumber {
		t.Fatalf("renewed cert: expires %s (was %s), epoch %s (was %s)", renewed.NotAfter, first.NotAfter, renewed.Subject.SerialNumber, first.Subject.SerialNumber)
	}
	client.stop()
	waitAgents(t, s.Registry, 0)
	runClient(t, &Client{Name: "r1", Dialer: &fakeDialer{}, Connect: RemoteConnect(addr, id), MinBackoff: 10 * time.Millisecond})
	waitAgents(t, s.Registry, 1)
}

// TestHeartbeatTimeout: a peer that stops heartbeating is cut off after
// three intervals.
func TestHeartbeatTimeout(t *testing.T) {
	s, _, _ := newServer(t)
	agentEnd, _ := s.LocalConnect("mute")(context.Background())
	defer agentEnd.Close()
	// Speak the protocol by hand: hello, then silence.
	var w welcome
	if err := readFrame(agentEnd, &w); err != nil {
		t.Fatal(err)
	}
	mux, err := yamux.Client(agentEnd, muxConfig(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	ctrl, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	writeFrame(ctrl, control{Type: ctrlHello, Connections: []ConnInfo{{Name: "pg", Type: "postgres"}}})
	waitAgents(t, s.Registry, 1)
	start := time.Now()
	waitAgents(t, s.Registry, 0)
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Fatalf("silent agent dropped after %s, want about 3 heartbeats (300ms)", d)
	}
}

// FuzzReadFrame: frames from a hostile peer never panic or allocate past
// the cap.
func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	writeFrame(&buf, control{Type: ctrlHello, Connections: []ConnInfo{{Name: "pg"}}})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m control
		readFrame(bytes.NewReader(b), &m)
		var r request
		readFrame(bytes.NewReader(b), &r)
	})
}

// recordConn records each Write it gets.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (r *recordConn) Write(b []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), b...))
	return len(b), nil
}

// TestFrameJoiner: a small data frame's header and body go out in one
// write; other frames and large bodies pass through unchanged, in order.
func TestFrameJoiner(t *testing.T) {
	hdr := func(typ byte, length uint32) []byte {
		h := make([]byte, 12)
		h[1] = typ
		h[8], h[9], h[10], h[11] = byte(length>>24), byte(length>>16), byte(length>>8), byte(length)
		return h
	}
	rc := &recordConn{}
	j := &frameJoiner{Conn: rc}
	big := make([]byte, maxJoin+1)
	steps := [][]byte{
		hdr(0, 5), []byte("hello"), // joined
		hdr(1, 65536),                 // window update: alone
		hdr(0, uint32(len(big))), big, // too big to join
		hdr(0, 0), // a data frame without body (FIN): alone
	}
	for _, b := range steps {
		if n, err := j.Write(b); n != len(b) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(b), n, err)
		}
	}
	want := [][]byte{append(hdr(0, 5), "hello"...), hdr(1, 65536), hdr(0, uint32(len(big))), big, hdr(0, 0)}
	if len(rc.writes) != len(want) {
		t.Fatalf("%d writes, want %d", len(rc.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(rc.writes[i], want[i]) {
			t.Fatalf("write %d = %d bytes, want %d", i, len(rc.writes[i]), len(want[i]))
		}
	}
}
