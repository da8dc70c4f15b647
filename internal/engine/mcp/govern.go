package mcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// KindToolResult is the audit kind of a tool call's outcome; the call
// itself is the decision event of its mcp:call.
const KindToolResult = "mcp.result"

// call is one governed tool call.
type call struct {
	e     *Engine
	id    string // names the call in its audit events and its SQL session
	tool  string
	gs    *gateway.Session
	token string
	start time.Time
	// client names the MCP client from its initialize ("name/version").
	client string
}

// toolError is a tool call's failure as the agent sees it (a tool error,
// not a protocol error).
type toolError struct{ msg string }

func (e *toolError) Error() string { return e.msg }

func toolErrorf(format string, args ...any) error {
	return &toolError{msg: fmt.Sprintf(format, args...)}
}

// begin authenticates a tool call and decides it: mcp:call on
// Tool::"<connection>/<tool>", with the arguments in context.arguments.
// The decision's audit event is the call's audit event: it names the MCP
// client, the agent, the human, the tool and the masked arguments.
func (e *Engine) begin(ctx context.Context, req *mcp.CallToolRequest, connection string, args map[string]any) (*call, error) {
	tool := req.Params.Name
	if req.Extra == nil || req.Extra.TokenInfo == nil {
		// Only reachable if Handler's middleware is bypassed.
		return nil, toolErrorf("gatehouse: no bearer token")
	}
	ti := req.Extra.TokenInfo
	token, _ := ti.Extra[extraToken].(string)
	source, _ := ti.Extra[extraSource].(string)
	c := &call{e: e, id: newCallID(), tool: tool, token: token, start: time.Now()}
	if ci := req.ClientInfo(); ci != nil {
		c.client = ci.Name
		if ci.Version != "" {
			c.client += "/" + ci.Version
		}
	}
	if connection == "" {
		connection = gateway.GatehouseConnection
	}
	gs, err := e.opts.Pipeline.AuthenticateCall(ctx, token, connection, "mcp", "mcp "+source)
	if err != nil {
		return nil, toolErrorf("gatehouse: %s", strings.TrimPrefix(err.Error(), gateway.ErrAuth.Error()+": "))
	}
	c.gs = gs
	r := gateway.Request{
		Accesses: []gateway.Access{{Action: "mcp:call", ResourceType: policy.Tool, ResourceID: connection + "/" + tool}},
		Context:  map[string]any{"tool": tool, "arguments": args},
	}
	r.Audit.Details = map[string]string{
		"protocol":    "mcp",
		"tool":        tool,
		"call":        c.id,
		"arguments":   e.maskedArguments(args),
		"mcp_client":  c.client,
		"mcp_session": req.Session.ID(),
	}
	v, err := e.opts.Pipeline.Authorize(ctx, gs, r)
	if errors.Is(err, gateway.ErrAuth) { // revoked or expired since AuthenticateCall
		return nil, toolErrorf("gatehouse: %s", gateway.EndMessage(err))
	}
	if err != nil {
		return nil, toolErrorf("gatehouse: tool call refused: %s", gateway.AuditRefusal(err))
	}
	if !v.Allow {
		return nil, toolErrorf("gatehouse: %s", v.Reason)
	}
	if v.Hold != nil {
		if err := e.holdCall(ctx, c, v.Hold, connection+"/"+tool, args); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// holdCall waits for a human to approve a tool call that policy allows only
// with an approval (@approval on the permit of mcp:call). The approval is
// bound to the tool and its exact arguments: the same call made again once
// it is approved runs without asking twice. A call still pending after the
// wait is a tool error naming the approval. The wait ends early when the
// call's token expires or is revoked (Pipeline.Watch): the HTTP request
// was verified when it arrived, and the wait may outlive the token.
func (e *Engine) holdCall(ctx context.Context, c *call, h *gateway.Hold, resource string, args map[string]any) error {
	raw, _ := json.Marshal(args)
	wait := e.opts.ApprovalWait
	if n, ok := args["wait_seconds"].(int); ok && n > 0 {
		wait = min(time.Duration(n)*time.Second, e.opts.ApprovalWaitLimit)
	}
	tctx, stop := e.opts.Pipeline.Watch(ctx, c.gs)
	defer stop()
	wctx, cancel := context.WithTimeout(tctx, wait)
	defer cancel()
	// Reviewers see the call exactly (the tool and its clear arguments);
	// the audit log gets the masked arguments.
	op := approval.Operation{Action: "mcp:call", Text: resource + " " + string(raw)}
	summary := "mcp:call " + resource + " " + e.maskedArguments(args)
	out, err := e.opts.Pipeline.AwaitApproval(wctx, c.gs, h, op, summary, nil)
	switch {
	case c.gs.Ended() != nil:
		return toolErrorf("gatehouse: %s", gateway.EndMessage(c.gs.Ended()))
	case err != nil:
		return toolErrorf("gatehouse: approval unavailable: %v", err)
	case !out.Approved:
		return toolErrorf("gatehouse: %s", out.Reason)
	}
	return nil
}

// maskedArguments is the arguments as JSON (keys sorted) with sensitive
// values masked: a card number in a WHERE clause is not copied into the
// audit log. Policy saw the clear values.
func (e *Engine) maskedArguments(args map[string]any) string {
	b, err := json.Marshal(args) // sorts keys
	if err != nil {
		return ""
	}
	if e.opts.Masker != nil {
		b = e.opts.Masker.Mask(nil, b)
	}
	return string(b)
}

// finish audits the call's outcome.
func (c *call) finish(outcome string, err error, details map[string]string) {
	ev := audit.Event{Kind: KindToolResult, Principal: c.gs.PrincipalUID(), OnBehalfOf: c.gs.Claims.Actor, TokenID: c.gs.Claims.ID,
		Session: c.gs.ID, Source: c.gs.Source, Connection: c.gs.Connection, Action: "mcp:call",
		Resource: c.gs.Connection + "/" + c.tool, Decision: outcome,
		Details: map[string]string{"tool": c.tool, "call": c.id, "duration_ms": strconv.FormatInt(time.Since(c.start).Milliseconds(), 10)}}
	maps.Copy(ev.Details, details)
	if err != nil {
		ev.Reason = err.Error()
	}
	if _, aerr := c.e.opts.Pipeline.Audit.Enqueue(context.Background(), ev); aerr != nil {
		c.e.opts.Logger.Error("audit append failed", "kind", ev.Kind, "err", aerr)
	}
}

func newCallID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// arguments collects a call's arguments for policy: the ones given, by
// their schema names; the policy package fills the rest with "" and 0.
func arguments(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case string:
			if v != "" {
				m[kv[i].(string)] = v
			}
		case int:
			if v != 0 {
				m[kv[i].(string)] = v
			}
		}
	}
	return m
}

// errorText is what a failed call tells the agent.
func errorText(err error) string {
	var te *toolError
	if errors.As(err, &te) {
		return te.msg
	}
	return err.Error()
}
