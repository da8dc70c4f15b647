package tunnel

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/hashicorp/yamux"
)

// Client is an agent's side of the tunnel to one gateway node. It
// connects, says which connections it serves, sends heartbeats, renews its
// certificate, serves each stream the gateway opens with Dialer (the
// authenticated dial, then a byte relay), and reconnects with jittered
// backoff when the tunnel drops. The in-process agent of `gatehouse up`
// runs this same loop over an in-memory connection.
type Client struct {
	Name        string
	Version     string
	Dialer      agent.Dialer
	Connections []ConnInfo
	// Connect opens one connection to the gateway, past TLS.
	Connect func(ctx context.Context) (net.Conn, error)
	// Identity, when set, is renewed over the tunnel before it expires.
	Identity *Identity
	Logger   *slog.Logger
	// MinBackoff and MaxBackoff bound the reconnect delay (defaults
	// 500ms and 30s); each delay is drawn from [d/2, d].
	MinBackoff, MaxBackoff time.Duration
	// OnUp, when set, is called each time the tunnel is established.
	OnUp func()
}

// FatalError ends Run: retrying cannot help (the agent was revoked, its
// certificate is from an earlier enrollment or has expired).
type FatalError struct{ Msg string }

func (e *FatalError) Error() string { return e.Msg }

func (c *Client) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Run keeps the tunnel up until ctx ends (nil) or a FatalError.
func (c *Client) Run(ctx context.Context) error {
	attempt := 0
	for {
		up := false
		conn, err := c.Connect(ctx)
		if err == nil {
			up, err = c.serve(ctx, conn)
		}
		if ctx.Err() != nil {
			return nil
		}
		var fe *FatalError
		if errors.As(err, &fe) {
			return err
		}
		if up {
			attempt = 0
		}
		d := c.backoff(attempt)
		attempt++
		c.logger().Warn("tunnel down; reconnecting", "agent", c.Name, "in", d.Round(time.Millisecond), "err", err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	lo, hi := c.MinBackoff, c.MaxBackoff
	if lo <= 0 {
		lo = 500 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	d := hi
	if attempt < 20 {
		d = min(hi, lo<<attempt)
	}
	return d/2 + rand.N(d/2+1)
}

// serve runs one tunnel connection. up reports whether it got as far as
// the gateway acknowledging the hello.
func (c *Client) serve(ctx context.Context, conn net.Conn) (up bool, err error) {
	defer conn.Close()
	// Until the control loop runs (and says goodbye itself), an ended
	// context just drops the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	var w welcome
	if err := readFrame(conn, &w); err != nil {
		return false, fmt.Errorf("gateway welcome: %w", err)
	}
	if w.Error != "" {
		if w.Fatal {
			return false, &FatalError{Msg: "gateway refused the agent: " + w.Error}
		}
		return false, fmt.Errorf("gateway refused the agent: %s", w.Error)
	}
	conn.SetDeadline(time.Time{})
	hb := w.Heartbeat
	if hb <= 0 {
		hb = 5 * time.Second
	}
	mux, err := yamux.Client(&frameJoiner{Conn: conn}, muxConfig(c.logger()))
	if err != nil {
		return false, fmt.Errorf("tunnel: %w", err)
	}
	defer mux.Close()
	ctrl, err := mux.OpenStream()
	if err != nil {
		return false, fmt.Errorf("control stream: %w", err)
	}
	if err := writeFrame(ctrl, control{Type: ctrlHello, Version: c.Version, Connections: c.Connections}); err != nil {
		return false, fmt.Errorf("hello: %w", err)
	}
	ctrl.SetReadDeadline(time.Now().Add(15 * time.Second))
	var ack control
	if err := readFrame(ctrl, &ack); err != nil || ack.Type != ctrlAck {
		return false, fmt.Errorf("hello not acknowledged: %v", err)
	}
	c.logger().Info("tunnel up", "agent", c.Name, "node", w.Node, "connections", len(c.Connections))
	if c.OnUp != nil {
		c.OnUp()
	}

	if !stop() {
		return true, nil
	}
	go func() {
		for {
			st, err := mux.AcceptStream()
			if err != nil {
				return
			}
			go c.handle(ctx, st)
		}
	}()
	return true, c.control(ctx, mux, ctrl, hb)
}

// control sends heartbeats and renewals and reads the gateway's answers;
// three heartbeats without an answer end the tunnel.
func (c *Client) control(ctx context.Context, mux *yamux.Session, ctrl *yamux.Stream, hb time.Duration) error {
	renewed := make(chan control, 1)
	readErr := make(chan error, 1)
	go func() {
		for {
			ctrl.SetReadDeadline(time.Now().Add(3 * hb))
			var m control
			if err := readFrame(ctrl, &m); err != nil {
				if errors.Is(err, yamux.ErrTimeout) {
					err = errors.New("gateway stopped answering heartbeats")
				}
				readErr <- err
				mux.Close()
				return
			}
			if m.Type == ctrlRenewed {
				renewed <- m
			}
		}
	}()
	t := time.NewTicker(hb)
	defer t.Stop()
	var seq int64
	var pending *ecdsa.PrivateKey // key of the renewal in flight
	for {
		select {
		case <-ctx.Done():
			// Say goodbye, so the gateway records a clean shutdown rather
			// than a lost tunnel.
			ctrl.SetWriteDeadline(time.Now().Add(time.Second))
			writeFrame(ctrl, control{Type: ctrlBye})
			return nil
		case err := <-readErr:
			if errors.Is(err, io.EOF) || mux.IsClosed() {
				return fmt.Errorf("tunnel closed: %w", err)
			}
			return err
		case m := <-renewed:
			key := pending
			pending = nil
			if m.Error != "" || key == nil {
				c.logger().Warn("certificate renewal refused", "agent", c.Name, "err", m.Error)
				continue
			}
			if err := c.Identity.save(key, m.Cert, nil); err != nil {
				c.logger().Error("renewed certificate not saved", "agent", c.Name, "err", err)
				continue
			}
			c.logger().Info("certificate renewed", "agent", c.Name)
		case <-t.C:
			seq++
			if err := writeFrame(ctrl, control{Type: ctrlHeartbeat, Seq: seq}); err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
			if pending == nil && c.Identity != nil && c.needsRenewal() {
				key, csr, err := newCSR(c.Name)
				if err != nil {
					c.logger().Error("certificate renewal", "err", err)
					continue
				}
				if err := writeFrame(ctrl, control{Type: ctrlRenew, CSR: csr}); err != nil {
					return fmt.Errorf("renewal: %w", err)
				}
				pending = key
			}
		}
	}
}

// needsRenewal reports whether the certificate on disk is past two thirds
// of its life.
func (c *Client) needsRenewal() bool {
	cert, _, err := c.Identity.Load()
	if err != nil || cert.Leaf == nil {
		return false
	}
	return time.Now().After(renewAt(cert.Leaf))
}

// handle serves one stream the gateway opened: a request, a response, and
// for a dial the upstream's bytes in both directions.
func (c *Client) handle(ctx context.Context, st *yamux.Stream) {
	st.SetReadDeadline(time.Now().Add(15 * time.Second))
	var req request
	if err := readFrame(st, &req); err != nil {
		st.Close()
		return
	}
	st.SetReadDeadline(time.Time{})
	switch req.Op {
	case opPostgresDial:
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		pc, err := c.Dialer.DialPostgres(dctx, req.Connection, agent.PostgresParams{Database: req.Database, Runtime: req.Runtime})
		cancel()
		if err != nil {
			c.logger().Warn("upstream dial failed", "agent", c.Name, "connection", req.Connection, "err", err)
			writeFrame(st, errorResponse(err))
			st.Close()
			return
		}
		if err := writeFrame(st, response{PID: pc.PID, Secret: pc.SecretKey, Params: pc.ParameterStatus, Tx: pc.TxStatus}); err != nil {
			pc.Conn.Close()
			st.Close()
			return
		}
		splice(st, pc.Conn)
	case opPostgresCancel:
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := c.Dialer.CancelPostgres(cctx, req.Connection, req.PID, req.Secret)
		cancel()
		if err != nil {
			writeFrame(st, errorResponse(err))
		} else {
			writeFrame(st, response{})
		}
		st.Close()
	default:
		writeFrame(st, response{Error: fmt.Sprintf("unknown operation %q (agent version too old?)", req.Op)})
		st.Close()
	}
}

func errorResponse(err error) response {
	r := response{Error: err.Error()}
	if errors.Is(err, agent.ErrUnknownConnection) {
		r.Code = codeUnknownConnection
	}
	var de *agent.DialError
	if errors.As(err, &de) {
		r.Dial = &dialFailure{Reason: de.Reason, SQLSTATE: de.Code, Message: de.Message, Hint: de.Hint}
	}
	return r
}

// splice relays bytes between the stream and the upstream until either
// side ends, then closes both. Flow control is the stream window: when the
// gateway stops reading, writes here block and the upstream is not read.
func splice(st *yamux.Stream, up net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, st)
		up.Close()
	}()
	io.Copy(st, up)
	st.Close()
	up.Close()
	<-done
}

// RemoteConnect returns a Client.Connect that dials the gateway at addr
// with the agent's certificate, trusting only the CA saved at enrollment.
func RemoteConnect(addr string, id Identity) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		cert, roots, err := id.Load()
		if err != nil {
			return nil, &FatalError{Msg: err.Error()}
		}
		if time.Now().After(cert.Leaf.NotAfter) {
			return nil, &FatalError{Msg: fmt.Sprintf("agent certificate expired at %s; enroll the agent again", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))}
		}
		cfg := &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{*cert},
			// The chain is checked against the saved CA, without a host
			// name: see verifyGateway.
			InsecureSkipVerify: true,
			VerifyConnection:   func(cs tls.ConnectionState) error { return verifyGateway(cs, roots) },
		}
		d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 15 * time.Second}, Config: cfg}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second) // TCP and TLS handshake
		defer cancel()
		c, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("connect to gateway %s: %w", addr, err)
		}
		return c, nil
	}
}

// Leaf returns the agent's current certificate, for status output.
func (id Identity) Leaf() (*x509.Certificate, error) {
	cert, _, err := id.Load()
	if err != nil {
		return nil, err
	}
	return cert.Leaf, nil
}
