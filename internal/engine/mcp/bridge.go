package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Bridge relays one MCP client on a local transport (stdio, for an agent
// framework that spawns `gatehouse mcp`) to the gateway's /mcp endpoint.
// It relays JSON-RPC messages as they are, so the gateway sees the real
// client's initialize (its name and version go into the audit log), and
// every tool, notification and future feature works unchanged; it adds the
// bearer token to each HTTP request.
type Bridge struct {
	// Endpoint is the gateway's MCP URL, e.g. http://127.0.0.1:8080/mcp.
	Endpoint string
	// Token returns the bearer token for each request, so a token file
	// refreshed on disk is picked up without restarting the bridge.
	Token      func() (string, error)
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Run relays between local and the gateway until local closes (a clean
// end) or the gateway session fails.
func (b *Bridge) Run(ctx context.Context, local mcp.Transport) error {
	logger := b.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client := b.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	rt := &bearer{next: client.Transport, token: b.Token}
	if rt.next == nil {
		rt.next = http.DefaultTransport
	}
	hc := *client
	hc.Transport = rt
	remote := &mcp.StreamableClientTransport{
		Endpoint: b.Endpoint, HTTPClient: &hc,
		// The gateway sends nothing unasked; responses come on each POST.
		DisableStandaloneSSE: true,
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	down, err := local.Connect(ctx)
	if err != nil {
		return fmt.Errorf("mcp bridge: local transport: %w", err)
	}
	defer down.Close()
	up, err := remote.Connect(ctx)
	if err != nil {
		return fmt.Errorf("mcp bridge: %s: %w", b.Endpoint, err)
	}
	defer up.Close()

	errc := make(chan error, 2)
	var wmu sync.Mutex // down.Write from both directions
	writeDown := func(m jsonrpc.Message) error {
		wmu.Lock()
		defer wmu.Unlock()
		return down.Write(ctx, m)
	}
	go func() { // client → gateway
		for {
			m, err := down.Read(ctx)
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil // the client closed stdin: a clean end
				}
				errc <- err
				return
			}
			if req, ok := m.(*jsonrpc.Request); ok {
				rt.observe(req)
			}
			if err := up.Write(ctx, m); err != nil {
				req, ok := m.(*jsonrpc.Request)
				if !ok || !req.IsCall() {
					logger.Warn("mcp bridge: message not delivered to the gateway", "err", err)
					continue
				}
				// The gateway never saw the call: answer it here so the
				// client does not wait forever.
				werr := &jsonrpc.Error{}
				if !errors.As(err, &werr) {
					werr = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: rt.explain(err)}
				}
				if err := writeDown(&jsonrpc.Response{ID: req.ID, Error: werr}); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	go func() { // gateway → client
		for {
			m, err := up.Read(ctx)
			if err != nil {
				errc <- fmt.Errorf("gateway session ended: %s", rt.explain(err))
				return
			}
			if resp, ok := m.(*jsonrpc.Response); ok {
				rt.initialized(resp)
			}
			if err := writeDown(m); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return nil
	}
}

// bearer adds the token to every request to the gateway, and the protocol
// version header a client sends after initialize (the SDK's client adds it
// only for sessions it initialized itself).
type bearer struct {
	next  http.RoundTripper
	token func() (string, error)

	mu        sync.Mutex
	initID    jsonrpc.ID // the initialize request's id
	version   string     // the protocol version the gateway chose
	lastAuthz string     // the gateway's last refusal, for the error message
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := b.token()
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	b.mu.Lock()
	if b.version != "" && r.Header.Get("Mcp-Protocol-Version") == "" {
		r.Header.Set("Mcp-Protocol-Version", b.version)
	}
	b.mu.Unlock()
	resp, err := b.next.RoundTrip(r)
	if err == nil && resp.StatusCode < 300 {
		b.mu.Lock()
		b.lastAuthz = ""
		b.mu.Unlock()
	}
	if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		b.mu.Lock()
		b.lastAuthz = fmt.Sprintf("the gateway refused the token (%s): %s", resp.Status, strings.TrimSpace(string(body)))
		b.mu.Unlock()
	}
	return resp, err
}

// observe notes the initialize request, to read the version from its
// response.
func (b *bearer) observe(req *jsonrpc.Request) {
	if req.Method == "initialize" {
		b.mu.Lock()
		b.initID = req.ID
		b.mu.Unlock()
	}
}

func (b *bearer) initialized(resp *jsonrpc.Response) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.initID.IsValid() || resp.ID != b.initID || resp.Error != nil {
		return
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(resp.Result, &res) == nil {
		b.version = res.ProtocolVersion
	}
}

// explain words a transport error, naming an authorization refusal.
func (b *bearer) explain(err error) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastAuthz != "" {
		return b.lastAuthz
	}
	return err.Error()
}
