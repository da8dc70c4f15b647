package policy

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// mcpCall is an MCP tool call as the MCP engine asks it.
func mcpCall(p Principal, conn, tool string, args map[string]any) Request {
	return Request{Principal: p, Action: "mcp:call", Resource: Resource{Type: Tool, ID: conn + "/" + tool, Connection: conn},
		Context: map[string]any{"tool": tool, "arguments": args}}
}

// gatehouseAgent may use the pseudo-connection "gatehouse", as the gateway
// gives every principal for the tools about Gatehouse itself.
func gatehouseAgent(scopes ...string) Principal {
	p := agent(scopes...)
	p.Connections = []string{"gatehouse"}
	return p
}

func TestStarterMCPTools(t *testing.T) {
	set, err := LoadFS(StarterFS())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		req      Request
		allow    bool
		policies []string
	}{
		{"read queries", mcpCall(agent("read"), "pg", "query", map[string]any{"connection": "pg", "sql": "SELECT 1"}), true, []string{"scope-read-mcp"}},
		{"read describes", mcpCall(agent("read"), "pg", "describe", map[string]any{"connection": "pg"}), true, []string{"scope-read-mcp"}},
		{"read lists connections", mcpCall(gatehouseAgent("read"), "gatehouse", "list_connections", nil), true, []string{"scope-read-mcp"}},
		{"write asks approval status", mcpCall(gatehouseAgent("write"), "gatehouse", "approval_status", map[string]any{"approval_id": "x"}), true, []string{"scope-read-mcp"}},
		{"read may not call an unknown tool", mcpCall(agent("read"), "pg", "drop_everything", nil), false, nil},
		{"no scope may not query", mcpCall(agent(), "pg", "query", nil), false, nil},
		{"admin calls any tool", mcpCall(agent("admin"), "pg", "drop_everything", nil), true, []string{"scope-admin"}},
		{"connection outside the token", mcpCall(agent("read"), "prod", "query", nil), false, []string{"agent-connection-scope"}},
		{"human gets no tools", mcpCall(Principal{Type: User, ID: "alice"}, "pg", "query", nil), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := set.Decide(tt.req)
			if d.Allow != tt.allow || !slices.Equal(ids(d), tt.policies) || len(d.Errors) > 0 {
				t.Fatalf("Decide = allow %v by %v, errors %v; want allow %v by %v", d.Allow, ids(d), d.Errors, tt.allow, tt.policies)
			}
		})
	}
}

// TestMCPArguments shows policies reading a tool call's arguments
// (context.arguments), with the ones a call leaves out read as "" or 0.
func TestMCPArguments(t *testing.T) {
	set, err := LoadFS(fstest.MapFS{"mcp.cedar": {Data: []byte(`
@id("mcp-tools")
permit (principal is Agent, action == Action::"mcp:call", resource);

@id("no-catalog-via-mcp")
@reason("agents may not read the password catalog")
forbid (principal is Agent, action == Action::"mcp:call", resource)
when { context.arguments.sql like "*pg_authid*" };

@id("small-results")
@reason("ask for at most 500 rows")
forbid (principal is Agent, action == Action::"mcp:call", resource)
when { context.arguments.max_rows > 500 };

@id("approval-ids-only-for-approval-status")
forbid (principal is Agent, action == Action::"mcp:call", resource)
when { context.tool != "approval_status" && context.arguments.approval_id != "" };
`)}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     map[string]any
		allow    bool
		policies []string
		errSub   string
	}{
		{"plain query", map[string]any{"connection": "pg", "sql": "SELECT 1"}, true, []string{"mcp-tools"}, ""},
		{"no arguments at all", nil, true, []string{"mcp-tools"}, ""},
		{"sql matched by like", map[string]any{"sql": "select rolpassword from pg_authid"}, false, []string{"no-catalog-via-mcp"}, ""},
		{"long argument", map[string]any{"sql": "SELECT 1", "max_rows": 1000}, false, []string{"small-results"}, ""},
		{"string argument default", map[string]any{"approval_id": "a1"}, false, []string{"approval-ids-only-for-approval-status"}, ""},
		{"unknown argument denies", map[string]any{"sqll": "SELECT 1"}, false, nil, `has no attribute "sqll"`},
		{"wrong type denies", map[string]any{"max_rows": "ten"}, false, nil, `"max_rows" must be a Long`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := set.Decide(mcpCall(agent("read"), "pg", "query", tt.args))
			if d.Allow != tt.allow || !slices.Equal(ids(d), tt.policies) {
				t.Fatalf("Decide = allow %v by %v (errors %v); want allow %v by %v", d.Allow, ids(d), d.Errors, tt.allow, tt.policies)
			}
			if tt.errSub == "" && len(d.Errors) > 0 {
				t.Fatalf("unexpected errors: %v", d.Errors)
			}
			if tt.errSub != "" && (len(d.Errors) == 0 || !strings.Contains(d.Errors[0].Msg, tt.errSub)) {
				t.Fatalf("errors %v, want one containing %q", d.Errors, tt.errSub)
			}
		})
	}
	// `gatehouse policy test` takes the same partial record as JSON.
	d, err := set.Evaluate(TestInput{Principal: `Agent::"a"`, Action: "mcp:call", Resource: `Tool::"pg/query"`,
		Context: `{"tool": "query", "arguments": {"sql": "select * from pg_authid"}}`})
	if err != nil || d.Allow || !slices.Equal(ids(d), []string{"no-catalog-via-mcp"}) {
		t.Fatalf("Evaluate = %+v, %v; want a deny by no-catalog-via-mcp", d, err)
	}
	if _, err := set.Evaluate(TestInput{Principal: `Agent::"a"`, Action: "mcp:call", Resource: `Tool::"pg/query"`,
		Context: `{"arguments": {"nope": 1}}`}); err == nil || !strings.Contains(err.Error(), `has no attribute "nope"`) {
		t.Fatalf("Evaluate with an unknown argument: %v", err)
	}
}
