package policy

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestStarterFilesValidate(t *testing.T) {
	names, err := fs.Glob(StarterFS(), "*.cedar")
	if err != nil || len(names) == 0 {
		t.Fatalf("no starter files: %v", err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(StarterFS(), name)
			if err != nil {
				t.Fatal(err)
			}
			// Each file alone, so none depends on another to validate.
			if _, err := LoadFS(fstest.MapFS{name: {Data: data}}); err != nil {
				t.Fatalf("starter file does not validate:\n%v", err)
			}
		})
	}
	if _, err := fs.Stat(StarterFS(), SchemaFile); err != nil {
		t.Errorf("schema not among the starter files: %v", err)
	}
	if !strings.Contains(SchemaText(), `entity Agent in [Group]`) {
		t.Errorf("SchemaText does not look like the schema:\n%s", SchemaText())
	}
}

func TestStarterPolicies(t *testing.T) {
	set, err := LoadFS(StarterFS())
	if err != nil {
		t.Fatal(err)
	}
	sql := func(p Principal, action string, flags ...string) Request {
		return Request{Principal: p, Action: action, Resource: usersTable(),
			Context: map[string]any{"class": strings.TrimPrefix(action, "sql:"), "tables": []string{"public.users"}, "flags": flags}}
	}
	tests := []struct {
		name       string
		req        Request
		allow      bool
		policies   []string // determining policy ids
		wantReason string   // substring of Decision.Reason
	}{
		{"read selects", sql(agent("read"), "sql:select"), true, []string{"scope-read"}, `allowed by policy "scope-read"`},
		{"read connects", Request{Principal: agent("read"), Action: "connect", Resource: Resource{Type: Connection, ID: "pg"}}, true, []string{"scope-read"}, ""},
		{"read sets an ordinary setting", sql(agent("read"), "sql:utility"), true, []string{"scope-read"}, ""},
		{"read may not update", sql(agent("read"), "sql:update"), false, nil, "no policy permits"},
		{"read may not ddl", sql(agent("read"), "sql:ddl"), false, nil, ""},
		{"no scope gets nothing", sql(agent(), "sql:select"), false, nil, ""},
		{"write selects", sql(agent("write"), "sql:select"), true, []string{"scope-read"}, ""},
		{"write updates with where", sql(agent("write"), "sql:update"), true, []string{"scope-write"}, ""},
		{"read copies out", sql(agent("read"), "sql:copy"), true, []string{"scope-read"}, ""},
		{"write update without where", sql(agent("write"), "sql:update", "no_where"), false, []string{"guard-no-where"}, "WHERE"},
		{"write may not ddl", sql(agent("write"), "sql:ddl"), false, nil, ""},
		{"ddl creates", sql(agent("ddl"), "sql:ddl"), true, []string{"scope-ddl"}, ""},
		{"ddl may not drop", sql(agent("ddl"), "sql:ddl", "drop"), false, []string{"guard-drop"}, "DROP is not allowed"},
		{"admin may not drop", sql(agent("admin"), "sql:ddl", "drop"), false, []string{"guard-drop"}, `denied by policy "guard-drop": DROP is not allowed for agents`},
		{"admin may not truncate", sql(agent("admin"), "sql:ddl", "truncate"), false, []string{"guard-truncate"}, ""},
		{"admin may not alter drop", sql(agent("admin"), "sql:ddl", "alter_drop"), false, []string{"guard-alter-drop"}, ""},
		{"admin risky function", sql(agent("admin"), "sql:select", "risky_function"), false, []string{"guard-risky-function"}, ""},
		{"admin copy program", sql(agent("admin"), "sql:copy", "copy_program"), false, []string{"guard-copy-program"}, ""},
		{"admin set role", sql(agent("admin"), "sql:utility", "set_role"), false, []string{"guard-session-identity"}, ""},
		{"admin alter system", sql(agent("admin"), "sql:utility", "alter_system"), false, []string{"guard-session-identity"}, ""},
		{"admin mixed read write", sql(agent("admin"), "sql:insert", "multi_statement", "mixed_read_write"), false, []string{"guard-mixed-read-write"}, ""},
		{"read multi statement reads", sql(agent("read"), "sql:select", "multi_statement"), true, []string{"scope-read"}, ""},
		{"two guardrails both named", sql(agent("admin"), "sql:delete", "no_where", "truncate"), false, []string{"guard-truncate", "guard-no-where"}, ""},
		{"admin unparsed", sql(agent("admin"), "sql:unparsed"), false, nil, "no policy permits"},
		{"admin dcl", sql(agent("admin"), "sql:dcl"), true, []string{"scope-admin"}, ""},
		{"admin kubernetes", Request{Principal: agent("admin"), Action: "k8s:delete",
			Resource: Resource{Type: Namespace, ID: "pg/default", Connection: "pg"}}, true, []string{"scope-admin"}, ""},
		{"connection not in token", Request{Principal: agent("admin"), Action: "sql:select",
			Resource: Resource{Type: Table, ID: "prod/public.users", Connection: "prod"}}, false, []string{"agent-connection-scope"}, "not in the agent's token"},
		{"human gets nothing", sql(Principal{Type: User, ID: "alice"}, "sql:select"), false, nil, ""},
		{"human in dba group gets nothing by default", sql(Principal{Type: User, ID: "alice", Groups: []string{"dba"}}, "sql:select"), false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := set.Decide(tt.req)
			if d.Allow != tt.allow || !slices.Equal(ids(d), tt.policies) || len(d.Errors) > 0 {
				t.Fatalf("Decide = allow %v by %v, errors %v; want allow %v by %v", d.Allow, ids(d), d.Errors, tt.allow, tt.policies)
			}
			if !strings.Contains(d.Reason(), tt.wantReason) {
				t.Errorf("Reason() = %q, want it to contain %q", d.Reason(), tt.wantReason)
			}
		})
	}
}

// TestStarterHumanExample uncomments the example in humans.cedar, so the
// example a user copies stays valid and does what it says.
func TestStarterHumanExample(t *testing.T) {
	data, err := fs.ReadFile(StarterFS(), "humans.cedar")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(data), "// @id(")
	if !ok {
		t.Fatal("humans.cedar has no commented example")
	}
	example = strings.ReplaceAll("@id("+example, "\n// ", "\n")
	example = strings.ReplaceAll(example, "\n//", "\n")
	set, err := LoadFS(fstest.MapFS{"humans.cedar": {Data: []byte(example)}})
	if err != nil {
		t.Fatalf("the uncommented example does not load:\n%s\n%v", example, err)
	}
	dba := Principal{Type: User, ID: "alice", Groups: []string{"dba"}}
	if d := set.Decide(Request{Principal: dba, Action: "sql:delete", Resource: usersTable()}); !d.Allow {
		t.Errorf("a DBA may not delete under the example: %s", d.Reason())
	}
	if d := set.Decide(Request{Principal: Principal{Type: User, ID: "bob"}, Action: "sql:select", Resource: usersTable()}); d.Allow {
		t.Errorf("a user outside the group may select under the example")
	}
}

// TestStarterApprovalPolicies: approving is a human's decision (User
// principals in the approval's reviewer group), whatever an agent's groups
// or scopes; requesters see their own approvals.
func TestStarterApprovalPolicies(t *testing.T) {
	set, err := LoadFS(StarterFS())
	if err != nil {
		t.Fatal(err)
	}
	apr := Resource{Type: Approval, ID: "apr_1", Connection: "pg"}
	req := func(p Principal, action, group string, ctx map[string]any) Request {
		c := map[string]any{"reviewers": Ref{Type: Group, ID: group}, "kind": "statement", "held_action": "sql:ddl",
			"requester": `Agent::"bot"`, "on_behalf_of": "alice"}
		for k, v := range ctx {
			c[k] = v
		}
		return Request{Principal: p, Action: action, Resource: apr, Context: c}
	}
	erin := Principal{Type: User, ID: "erin", Groups: []string{"admins"}}
	agentIn := func(scopes ...string) Principal {
		p := agent(scopes...)
		p.Groups = []string{"admins"}
		return p
	}
	tests := []struct {
		name     string
		req      Request
		allow    bool
		policies []string
	}{
		{"a human in the reviewer group decides", req(erin, "approval:decide", "admins", nil), true, []string{"approval-reviewers"}},
		{"a human in the reviewer group sees", req(erin, "approval:view", "admins", nil), true, []string{"approval-reviewers"}},
		{"the group checked is the approval's", req(erin, "approval:decide", "dba", nil), false, nil},
		{"a human outside the group", req(Principal{Type: User, ID: "frank", Groups: []string{"devs"}}, "approval:decide", "admins", nil), false, nil},
		{"an agent in the group does not decide", req(agentIn("ddl"), "approval:decide", "admins", nil), false, nil},
		{"an admin-scoped agent in the group does not decide", req(agentIn("admin"), "approval:decide", "admins", nil), false, nil},
		{"an admin-scoped agent does not see", req(agentIn("admin"), "approval:view", "admins", nil), false, nil},
		{"the requesting agent sees", req(agent("read"), "approval:view", "admins", map[string]any{"is_requester": true}), true, []string{"approval-requesters"}},
		{"the requesting agent does not decide", req(agent("read"), "approval:decide", "admins", map[string]any{"is_requester": true}), false, nil},
		{"the human acted for sees", req(Principal{Type: User, ID: "alice"}, "approval:view", "admins", map[string]any{"is_on_behalf_of": true}), true, []string{"approval-requesters"}},
		{"an unrelated agent does not see", req(agent("read"), "approval:view", "admins", nil), false, nil},
		{"a requester outside its token's connections", req(Principal{Type: Agent, ID: "a", Scopes: []string{"read"}}, "approval:view", "admins",
			map[string]any{"is_requester": true}), false, []string{"agent-connection-scope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := set.Decide(tt.req)
			if d.Allow != tt.allow || !slices.Equal(ids(d), tt.policies) || len(d.Errors) > 0 {
				t.Fatalf("Decide = allow %v by %v, errors %v; want allow %v by %v", d.Allow, ids(d), d.Errors, tt.allow, tt.policies)
			}
		})
	}
	// Without the reviewer group in the context, nothing is allowed.
	r := req(erin, "approval:decide", "admins", nil)
	delete(r.Context, "reviewers")
	if d := set.Decide(r); d.Allow {
		t.Fatal("allowed without context.reviewers")
	}
	// A reviewer group of the wrong type is refused.
	r.Context["reviewers"] = "admins"
	if d := set.Decide(r); d.Allow || len(d.Errors) == 0 {
		t.Fatalf("a string reviewer group: %+v", d)
	}
}
