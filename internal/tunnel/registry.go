package tunnel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/hashicorp/yamux"
)

// Registry knows which connected agents serve which connections, and dials
// through them: it is the gateway's agent.Dialer. New sessions rotate
// across the agents that serve a connection; when a dial through one fails
// because its tunnel is gone, the next is tried.
type Registry struct {
	logger *slog.Logger
	// dialWait bounds how long a dial waits for an agent serving its
	// connection to (re)connect.
	dialWait time.Duration

	mu     sync.Mutex
	agents map[string]*agentSession
	known  map[string]ConnInfo // served now or earlier, for lookups
	next   map[string]uint64   // round-robin position per connection
	wake   chan struct{}       // closed and replaced when an agent registers
	routes map[route]*agentSession
	// missed holds, per connection, the wake channel in force when a dial
	// last waited dialWait for an agent in vain: until an agent registers
	// (wake changes), the next dial fails at once instead of waiting again
	// (psql retries a failed login without TLS, which waited twice).
	missed map[string]chan struct{}
}

// route finds the agent holding an upstream backend, for cancel requests.
type route struct {
	connection string
	pid        uint32
}

var _ agent.Dialer = (*Registry)(nil)

// NewRegistry builds an empty registry.
func NewRegistry(logger *slog.Logger, dialWait time.Duration) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{
		logger: logger, dialWait: dialWait,
		agents: map[string]*agentSession{}, known: map[string]ConnInfo{}, next: map[string]uint64{},
		wake: make(chan struct{}), routes: map[route]*agentSession{}, missed: map[string]chan struct{}{},
	}
}

// Remember records connections served before (by enrolled agents, from the
// store), so a client asking for one while its agent reconnects is told
// the agent is away rather than that the connection does not exist.
func (r *Registry) Remember(conns []ConnInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range conns {
		if _, ok := r.known[c.Name]; !ok {
			r.known[c.Name] = c
		}
	}
}

// Lookup reports whether a connection of type typ is known, and what its
// agent announced of it.
func (r *Registry) Lookup(name, typ string) (ConnInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.known[name]
	return c, ok && c.Type == typ
}

// Connections lists the known connections of type typ (served now or
// earlier), by name.
func (r *Registry) Connections(typ string) []ConnInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ConnInfo
	for _, c := range r.known {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y ConnInfo) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// AgentStatus describes a connected agent.
type AgentStatus struct {
	Name          string
	Local         bool
	Source        string
	Version       string
	Connections   []string
	Connected     time.Time
	LastHeartbeat time.Time
	Streams       int
}

// Agents lists connected agents by name.
func (r *Registry) Agents() []AgentStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]AgentStatus, 0, len(r.agents))
	for _, a := range r.agents {
		s := AgentStatus{Name: a.name, Local: a.local, Source: a.source, Version: a.version, Connected: a.connected,
			LastHeartbeat: time.Unix(0, a.lastBeat.Load()), Streams: a.mux.NumStreams()}
		for n := range a.conns {
			s.Connections = append(s.Connections, n)
		}
		slices.Sort(s.Connections)
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y AgentStatus) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// WaitFor blocks until an agent serving connection name is registered.
func (r *Registry) WaitFor(ctx context.Context, name string) error {
	for {
		r.mu.Lock()
		wake := r.wake
		for _, a := range r.agents {
			if _, ok := a.conns[name]; ok {
				r.mu.Unlock()
				return nil
			}
		}
		r.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("waiting for an agent serving %s: %w", name, ctx.Err())
		}
	}
}

// add registers a, returning the session it replaces (same agent name).
func (r *Registry) add(a *agentSession) (old *agentSession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old = r.agents[a.name]
	r.agents[a.name] = a
	for _, c := range a.conns {
		r.known[c.Name] = c
	}
	close(r.wake)
	r.wake = make(chan struct{})
	return old
}

// remove unregisters a unless a newer session has taken its place.
func (r *Registry) remove(a *agentSession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.agents[a.name] == a {
		delete(r.agents, a.name)
	}
	for k, v := range r.routes {
		if v == a {
			delete(r.routes, k)
		}
	}
}

func (r *Registry) session(name string) *agentSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.agents[name]
}

func (r *Registry) sessions() []*agentSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*agentSession, 0, len(r.agents))
	for _, a := range r.agents {
		out = append(out, a)
	}
	return out
}

// pick chooses the next agent serving connection that has not been tried,
// waiting up to dialWait for one to connect.
func (r *Registry) pick(ctx context.Context, connection, typ string, tried []*agentSession) (*agentSession, error) {
	var timeout <-chan time.Time
	for {
		r.mu.Lock()
		var cands []*agentSession
		for _, a := range r.agents {
			if c, ok := a.conns[connection]; ok && c.Type == typ && !a.isClosed() && !slices.Contains(tried, a) {
				cands = append(cands, a)
			}
		}
		if len(cands) > 0 {
			slices.SortFunc(cands, func(x, y *agentSession) int { return cmp.Compare(x.name, y.name) })
			n := r.next[connection]
			r.next[connection] = n + 1
			r.mu.Unlock()
			return cands[n%uint64(len(cands))], nil
		}
		wake := r.wake
		missedBefore := r.missed[connection] == wake
		r.mu.Unlock()
		if len(tried) > 0 {
			return nil, noAgent(connection, fmt.Errorf("%w: %s (every agent serving it failed)", agent.ErrNoAgent, connection))
		}
		if missedBefore {
			return nil, noAgent(connection, fmt.Errorf("%w: %s (none has connected since the last dial waited %s)", agent.ErrNoAgent, connection, r.dialWait))
		}
		if timeout == nil {
			t := time.NewTimer(r.dialWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-wake:
		case <-timeout:
			r.mu.Lock()
			if len(r.missed) < 1024 || r.missed[connection] != nil {
				r.missed[connection] = wake
			}
			r.mu.Unlock()
			return nil, noAgent(connection, fmt.Errorf("%w: %s", agent.ErrNoAgent, connection))
		case <-ctx.Done():
			return nil, noAgent(connection, fmt.Errorf("%w: %s: %w", agent.ErrNoAgent, connection, ctx.Err()))
		}
	}
}

// noAgent is the dial error when no agent serving connection is connected:
// safe for the client, which is told which connection lacks one.
func noAgent(connection string, err error) error {
	return &agent.DialError{Connection: connection, Reason: agent.ReasonNoAgent, Code: "08006", Err: err,
		Message: fmt.Sprintf("gatehouse: no agent serving connection %s is connected", connection),
		Hint:    "start `gatehouse agent` for it (or `gatehouse up`, whose agent serves the connections in its config); `gatehouse agents list` shows who is connected"}
}

// DialPostgres asks an agent serving the connection to connect and
// authenticate upstream, and returns the stream, past authentication.
func (r *Registry) DialPostgres(ctx context.Context, connection string, p agent.PostgresParams) (*agent.PostgresConn, error) {
	req := request{Op: opPostgresDial, Connection: connection, Database: p.Database, Runtime: p.Runtime}
	var tried []*agentSession
	for {
		a, err := r.pick(ctx, connection, "postgres", tried)
		if err != nil {
			return nil, err
		}
		st, resp, err := a.roundTrip(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("dial %s through agent %s: %w", connection, a.name, err)
			}
			// The tunnel failed, not the upstream: try another agent.
			r.logger.Warn("dial through agent failed; trying another", "agent", a.name, "connection", connection, "err", err)
			tried = append(tried, a)
			continue
		}
		if resp.Error != "" {
			st.Close()
			return nil, resp.err(a.name, connection)
		}
		key := route{connection, resp.PID}
		r.mu.Lock()
		r.routes[key] = a
		r.mu.Unlock()
		conn := &streamConn{Stream: st, a: a, onClose: func() {
			r.mu.Lock()
			if r.routes[key] == a {
				delete(r.routes, key)
			}
			r.mu.Unlock()
		}}
		return &agent.PostgresConn{Conn: conn, PID: resp.PID, SecretKey: resp.Secret, ParameterStatus: resp.Params, TxStatus: resp.Tx}, nil
	}
}

// CancelPostgres sends a cancel request through the agent holding the
// backend (any agent serving the connection if that one is gone).
func (r *Registry) CancelPostgres(ctx context.Context, connection string, pid uint32, secret []byte) error {
	r.mu.Lock()
	a := r.routes[route{connection, pid}]
	r.mu.Unlock()
	if a == nil || a.isClosed() {
		var err error
		if a, err = r.pick(ctx, connection, "postgres", nil); err != nil {
			return err
		}
	}
	st, resp, err := a.roundTrip(ctx, request{Op: opPostgresCancel, Connection: connection, PID: pid, Secret: secret})
	if err != nil {
		return fmt.Errorf("cancel on %s through agent %s: %w", connection, a.name, err)
	}
	st.Close()
	if resp.Error != "" {
		return resp.err(a.name, connection)
	}
	return nil
}

// agentSession is one agent's tunnel to this gateway node.
type agentSession struct {
	name        string
	local       bool
	epoch       int64
	source      string
	version     string
	conns       map[string]ConnInfo
	mux         *yamux.Session
	connected   time.Time
	certExpires time.Time
	lastBeat    atomic.Int64 // unix ns

	mu     sync.Mutex
	reason string
}

// close ends the tunnel; the first reason given is kept.
func (a *agentSession) close(reason string) {
	a.mu.Lock()
	if a.reason == "" {
		a.reason = reason
	}
	a.mu.Unlock()
	a.mux.Close()
}

func (a *agentSession) isClosed() bool { return a.mux.IsClosed() }

// closeReason is why the tunnel ended, once it has.
func (a *agentSession) closeReason() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reason == "" {
		return "tunnel closed"
	}
	return a.reason
}

// roundTrip opens a stream, sends req and reads the response. An error
// means the tunnel failed; an agent's refusal is in the response.
func (a *agentSession) roundTrip(ctx context.Context, req request) (*yamux.Stream, response, error) {
	var resp response
	st, err := a.mux.OpenStream()
	if err != nil {
		return nil, resp, a.lost(err)
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	// A cancelled context wakes the blocked read.
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Now()) })
	err = writeFrame(st, req)
	if err == nil {
		err = readFrame(st, &resp)
	}
	if !stop() || err != nil {
		st.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, resp, a.lost(err)
	}
	st.SetDeadline(time.Time{})
	return st, resp, nil
}

// lost turns an I/O error on a dead tunnel into agent.ErrAgentLost.
func (a *agentSession) lost(err error) error {
	if err == nil || !a.isClosed() {
		return err
	}
	return &lostError{agent: a.name, reason: a.closeReason()}
}

type lostError struct{ agent, reason string }

func (e *lostError) Error() string { return fmt.Sprintf("agent %s went away (%s)", e.agent, e.reason) }
func (e *lostError) Unwrap() error { return agent.ErrAgentLost }

// streamConn is an upstream connection through an agent. Reads and writes
// fail with agent.ErrAgentLost once the tunnel is gone, rather than a bare
// EOF that looks like the upstream hanging up.
type streamConn struct {
	*yamux.Stream
	a       *agentSession
	once    sync.Once
	onClose func()
}

var _ net.Conn = (*streamConn)(nil)

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.Stream.Read(b)
	if err != nil {
		err = c.a.lost(err)
	}
	return n, err
}

func (c *streamConn) Write(b []byte) (int, error) {
	n, err := c.Stream.Write(b)
	if err != nil {
		err = c.a.lost(err)
	}
	return n, err
}

func (c *streamConn) Close() error {
	c.once.Do(c.onClose)
	return c.Stream.Close()
}

// isLost reports whether err says an agent went away.
func isLost(err error) bool { return errors.Is(err, agent.ErrAgentLost) }
