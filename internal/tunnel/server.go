package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/acceptloop"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/hashicorp/yamux"
)

// Store is the part of store.Store the gateway side uses.
type Store interface {
	EnrollAgent(ctx context.Context, name, id string, hash []byte, now time.Time) (store.Agent, error)
	GetAgent(ctx context.Context, name string) (store.Agent, error)
	ListAgents(ctx context.Context) ([]store.Agent, error)
	AgentSeen(ctx context.Context, a store.AgentSeen) error
}

var _ Store = store.Store(nil)

// Event kinds the server reports.
const (
	EventEnroll     = "agent.enroll"
	EventConnect    = "agent.connect"
	EventDisconnect = "agent.disconnect"
	EventRenew      = "agent.renew"
)

// Event is something an administrator should be able to audit. It never
// carries a token, key or credential.
type Event struct {
	Kind     string
	Agent    string
	Source   string
	Decision string // allow or deny, for enroll, connect and renew
	Reason   string
	Details  map[string]string
}

// Server is the gateway's side of agent tunnels.
type Server struct {
	CA       *CA
	Store    Store
	Registry *Registry
	Logger   *slog.Logger
	// OnEvent receives audit-worthy events; nil drops them.
	OnEvent func(Event)
	// Node names this gateway node to agents.
	Node string
	// Heartbeat is how often agents send one; three missed close the
	// tunnel.
	Heartbeat time.Duration
	// CertTTL is the lifetime of the client certificates the CA signs.
	CertTTL time.Duration
	// RevocationPoll is how often the store is checked for revocations
	// made elsewhere (the CLI, another node); default 1s.
	RevocationPoll time.Duration
	// Tap, when set, wraps each agent connection after TLS; tests use it
	// to see every byte the gateway receives.
	Tap func(net.Conn) net.Conn
	// Unauthenticated caps connections still in the TLS handshake or
	// enrolling; zero fields mean no cap (acceptloop.Gate).
	Unauthenticated acceptloop.Limits

	wg sync.WaitGroup
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) event(e Event) {
	if s.OnEvent != nil {
		s.OnEvent(e)
	}
}

func (s *Server) heartbeat() time.Duration {
	if s.Heartbeat <= 0 {
		return 5 * time.Second
	}
	return s.Heartbeat
}

// tlsConfig serves the CA-signed listener certificate and asks for (but
// does not require) a client certificate: without one, a connection may
// only enroll.
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.CA.serverCertificate(time.Now())
		},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  s.CA.pool,
	}
}

// Serve accepts agent connections on ln until ctx ends, then closes every
// tunnel and waits for them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watch(ctx)
	}()
	cfg := s.tlsConfig()
	gate := &acceptloop.Gate{Limits: s.Unauthenticated, Name: "agents", Logger: s.logger()}
	return acceptloop.Serve(ctx, ln, &s.wg, "agent listener", gate, func(c net.Conn, authenticated func()) {
		s.handle(ctx, tls.Server(c, cfg), authenticated)
	})
}

// Wait waits for every tunnel served by Serve or LocalConnect to end.
func (s *Server) Wait() { s.wg.Wait() }

// handle serves one agent connection; authenticated frees its slot among
// the unauthenticated once the agent's certificate has been checked.
func (s *Server) handle(ctx context.Context, tc *tls.Conn, authenticated func()) {
	defer tc.Close()
	source := tc.RemoteAddr().String()
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		s.logger().Debug("agent tls handshake failed", "source", source, "err", err)
		return
	}
	var conn net.Conn = tc
	if s.Tap != nil {
		conn = s.Tap(conn)
	}
	peers := tc.ConnectionState().PeerCertificates
	if len(peers) == 0 {
		s.enroll(ctx, conn, source)
		return
	}
	leaf := peers[0]
	name, epoch, err := agentIdentity(leaf)
	if err == nil {
		err = s.check(ctx, name, epoch)
	}
	if err != nil {
		s.logger().Warn("agent refused", "agent", name, "source", source, "err", err)
		s.event(Event{Kind: EventConnect, Agent: name, Source: source, Decision: "deny", Reason: err.Error()})
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		writeFrame(conn, welcome{Error: err.Error(), Fatal: true})
		return
	}
	authenticated()
	s.run(ctx, conn, &agentSession{name: name, epoch: epoch, source: source, certExpires: leaf.NotAfter})
}

// check refuses an agent that is unknown, revoked, or presenting a
// certificate from an earlier enrollment.
func (s *Server) check(ctx context.Context, name string, epoch int64) error {
	a, err := s.Store.GetAgent(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("agent %s is not enrolled", name)
	case err != nil:
		return fmt.Errorf("agent %s: %w", name, err)
	case a.Revoked():
		return fmt.Errorf("agent %s is revoked", name)
	case a.Epoch != epoch:
		return fmt.Errorf("agent %s: certificate is from an earlier enrollment", name)
	}
	return nil
}

// LocalConnect returns a Client.Connect for the in-process agent: each
// call makes an in-memory connection and serves its far end here, with the
// same session code as a remote agent's tunnel, minus TLS, enrollment and
// the store (the in-process agent is the gateway itself).
func (s *Server) LocalConnect(name string) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		agentEnd, gatewayEnd := net.Pipe()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer gatewayEnd.Close()
			s.run(ctx, gatewayEnd, &agentSession{name: name, local: true, source: "in-process"})
		}()
		return agentEnd, nil
	}
}

// muxConfig tunes yamux for both ends. Its keepalive is off: heartbeats on
// the control stream do that job and name the agent. The stream window
// bounds what one slow session can buffer.
func muxConfig(logger *slog.Logger) *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false
	c.MaxStreamWindowSize = streamWindow
	c.StreamOpenTimeout = 15 * time.Second
	c.StreamCloseTimeout = 30 * time.Second
	c.ConnectionWriteTimeout = 15 * time.Second
	c.LogOutput = nil
	c.Logger = slog.NewLogLogger(logger.Handler(), slog.LevelDebug)
	return c
}

// streamWindow is the most one stream buffers at the receiver: a client
// that stops reading holds at most this much in the gateway, and the agent
// stops reading the upstream.
const streamWindow = 512 << 10

// run serves one agent's tunnel until it ends.
func (s *Server) run(ctx context.Context, conn net.Conn, a *agentSession) {
	hb := s.heartbeat()
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := writeFrame(conn, welcome{Node: s.Node, Heartbeat: hb}); err != nil {
		return
	}
	conn.SetWriteDeadline(time.Time{})
	mux, err := yamux.Server(&frameJoiner{Conn: conn}, muxConfig(s.logger()))
	if err != nil {
		return
	}
	a.mux = mux
	defer mux.Close()
	stop := context.AfterFunc(ctx, func() { a.close("gateway shutdown") })
	defer stop()

	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	ctrl, err := mux.AcceptStreamWithContext(actx)
	cancel()
	if err != nil {
		s.logger().Debug("agent opened no control stream", "agent", a.name, "err", err)
		return
	}
	ctrl.SetReadDeadline(time.Now().Add(15 * time.Second))
	var hello control
	if err := readFrame(ctrl, &hello); err != nil || hello.Type != ctrlHello {
		s.logger().Debug("agent sent no hello", "agent", a.name, "err", err)
		return
	}
	a.version = hello.Version
	a.conns = map[string]ConnInfo{}
	for _, c := range hello.Connections {
		a.conns[c.Name] = c
	}
	a.connected = time.Now()
	a.lastBeat.Store(a.connected.UnixNano())
	if err := writeFrame(ctrl, control{Type: ctrlAck}); err != nil {
		return
	}
	// Agents only answer streams; one that opens more is ignored.
	go func() {
		for {
			st, err := mux.AcceptStream()
			if err != nil {
				return
			}
			st.Close()
		}
	}()

	if old := s.Registry.add(a); old != nil {
		old.close("replaced by a new connection from the same agent")
	}
	names := slices.Sorted(maps.Keys(a.conns))
	s.logger().Info("agent connected", "agent", a.name, "source", a.source, "version", a.version, "connections", names)
	if !a.local {
		s.event(Event{Kind: EventConnect, Agent: a.name, Source: a.source, Decision: "allow", Details: map[string]string{"version": a.version, "connections": fmt.Sprint(names)}})
		s.seen(ctx, a)
	}

	reason := s.control(ctx, a, ctrl, hb)
	a.close(reason)
	s.Registry.remove(a)
	reason = a.closeReason()
	s.logger().Info("agent disconnected", "agent", a.name, "source", a.source, "reason", reason)
	if !a.local {
		s.event(Event{Kind: EventDisconnect, Agent: a.name, Source: a.source, Reason: reason})
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		s.seen(sctx, a)
		cancel()
	}
}

// control serves the control stream: heartbeats (each checks the agent is
// still enrolled) and certificate renewals. It returns why it stopped.
func (s *Server) control(ctx context.Context, a *agentSession, ctrl *yamux.Stream, hb time.Duration) string {
	for {
		ctrl.SetReadDeadline(time.Now().Add(3 * hb))
		var m control
		if err := readFrame(ctrl, &m); err != nil {
			switch {
			case a.isClosed():
				return a.closeReason()
			case errors.Is(err, yamux.ErrTimeout):
				return "heartbeat timeout"
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				return "agent closed the tunnel"
			}
			return "control stream: " + err.Error()
		}
		switch m.Type {
		case ctrlHeartbeat:
			a.lastBeat.Store(time.Now().UnixNano())
			if !a.local {
				if err := s.check(ctx, a.name, a.epoch); err != nil {
					return err.Error()
				}
				s.seen(ctx, a)
			}
			if err := writeFrame(ctrl, control{Type: ctrlAck, Seq: m.Seq}); err != nil {
				return "control stream: " + err.Error()
			}
		case ctrlBye:
			return "agent shut down"
		case ctrlRenew:
			reply := control{Type: ctrlRenewed}
			if a.local {
				reply.Error = "the in-process agent has no certificate"
			} else if cert, err := s.renew(ctx, a, m.CSR); err != nil {
				reply.Error = err.Error()
			} else {
				reply.Cert = cert
			}
			if err := writeFrame(ctrl, reply); err != nil {
				return "control stream: " + err.Error()
			}
		}
	}
}

func (s *Server) renew(ctx context.Context, a *agentSession, csr []byte) ([]byte, error) {
	err := s.check(ctx, a.name, a.epoch)
	var der []byte
	if err == nil {
		der, err = s.CA.signAgent(csr, a.name, a.epoch, s.certTTL(), time.Now())
	}
	if err != nil {
		s.event(Event{Kind: EventRenew, Agent: a.name, Source: a.source, Decision: "deny", Reason: err.Error()})
		return nil, err
	}
	s.event(Event{Kind: EventRenew, Agent: a.name, Source: a.source, Decision: "allow"})
	return der, nil
}

func (s *Server) certTTL() time.Duration {
	if s.CertTTL <= 0 {
		return 24 * time.Hour
	}
	return s.CertTTL
}

// seen records the heartbeat in the store, for `gatehouse agents list` on
// any node.
func (s *Server) seen(ctx context.Context, a *agentSession) {
	var conns []store.AgentConn
	for _, n := range slices.Sorted(maps.Keys(a.conns)) {
		c := a.conns[n]
		conns = append(conns, c)
	}
	err := s.Store.AgentSeen(ctx, store.AgentSeen{Name: a.name, Version: a.version, Connections: conns,
		Time: time.Unix(0, a.lastBeat.Load()), CertExpires: a.certExpires})
	if err != nil && ctx.Err() == nil {
		s.logger().Warn("agent heartbeat not recorded", "agent", a.name, "err", err)
	}
}

// watch cuts off agents revoked (or re-enrolled) elsewhere within
// RevocationPoll, without waiting for their next heartbeat.
func (s *Server) watch(ctx context.Context) {
	every := s.RevocationPoll
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var remote []*agentSession
		for _, a := range s.Registry.sessions() {
			if !a.local {
				remote = append(remote, a)
			}
		}
		if len(remote) == 0 {
			continue
		}
		rows, err := s.Store.ListAgents(ctx)
		if err != nil {
			s.logger().Warn("agent revocation check failed", "err", err)
			continue
		}
		byName := map[string]store.Agent{}
		for _, r := range rows {
			byName[r.Name] = r
		}
		for _, a := range remote {
			r, ok := byName[a.name]
			switch {
			case !ok:
				a.close("agent is no longer enrolled")
			case r.Revoked():
				a.close("revoked")
			case r.Epoch != a.epoch:
				a.close("re-enrolled elsewhere")
			}
		}
	}
}

// enroll serves one enrollment request on a connection without a client
// certificate.
func (s *Server) enroll(ctx context.Context, conn net.Conn, source string) {
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req enrollRequest
	if err := readFrame(conn, &req); err != nil {
		s.logger().Debug("enrollment: no request", "source", source, "err", err)
		return
	}
	cert, err := s.exchange(ctx, req)
	if err != nil {
		s.logger().Warn("agent enrollment refused", "agent", req.Name, "source", source, "err", err)
		s.event(Event{Kind: EventEnroll, Agent: req.Name, Source: source, Decision: "deny", Reason: err.Error()})
		writeFrame(conn, enrollResponse{Error: err.Error()})
		return
	}
	s.logger().Info("agent enrolled", "agent", req.Name, "source", source)
	s.event(Event{Kind: EventEnroll, Agent: req.Name, Source: source, Decision: "allow"})
	writeFrame(conn, enrollResponse{Cert: cert, CA: s.CA.cert.Raw})
}

func (s *Server) exchange(ctx context.Context, req enrollRequest) ([]byte, error) {
	id, secret, ok := cutToken(req.Token)
	if !ok {
		return nil, errors.New("malformed enrollment token")
	}
	now := time.Now()
	if req.Name == "" {
		return nil, errors.New("enrollment names no agent")
	}
	a, err := s.Store.EnrollAgent(ctx, req.Name, id, hashSecret(secret), now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("unknown enrollment token for agent %q", req.Name)
	case errors.Is(err, store.ErrTokenUsed):
		return nil, errors.New("enrollment token already used")
	case errors.Is(err, store.ErrTokenExpired):
		return nil, errors.New("enrollment token expired")
	case err != nil:
		return nil, fmt.Errorf("enrollment: %w", err)
	}
	return s.CA.signAgent(req.CSR, a.Name, a.Epoch, s.certTTL(), now)
}

func cutToken(t string) (id, secret string, ok bool) {
	for i := 0; i < len(t); i++ {
		if t[i] == '.' {
			return t[:i], t[i+1:], i > 0 && i < len(t)-1
		}
	}
	return "", "", false
}
