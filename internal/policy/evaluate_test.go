package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestEvaluate(t *testing.T) {
	set, err := LoadFS(StarterFS())
	if err != nil {
		t.Fatal(err)
	}
	const readAgent = `[{"uid": {"type": "Agent", "id": "a"}, "parents": [{"type": "Group", "id": "bots"}],
		"attrs": {"scopes": ["read"], "connections": ["pg"], "on_behalf_of": "alice"}}]`
	const adminAgent = `[{"uid": {"type": "Agent", "id": "a"}, "parents": [], "attrs": {"scopes": ["admin"], "connections": ["pg"]}}]`
	tests := []struct {
		name     string
		in       TestInput
		allow    bool
		policies []string
		badInput string // substring of the input error; "" for none
	}{
		{name: "read agent selects",
			in:    TestInput{Principal: `Agent::"a"`, Action: `Action::"sql:select"`, Resource: `Table::"pg/public.users"`, Entities: []byte(readAgent)},
			allow: true, policies: []string{"scope-read"}},
		{name: "bare action name",
			in:    TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/public.users"`, Entities: []byte(readAgent)},
			allow: true, policies: []string{"scope-read"}},
		{name: "read agent may not update",
			in: TestInput{Principal: `Agent::"a"`, Action: `Action::"sql:update"`, Resource: `Table::"pg/public.users"`, Entities: []byte(readAgent)}},
		{name: "agent missing from entities has no scopes or connections",
			in:       TestInput{Principal: `Agent::"a"`, Action: `Action::"sql:select"`, Resource: `Table::"pg/public.users"`},
			policies: []string{"agent-connection-scope"}},
		{name: "admin may not drop",
			in: TestInput{Principal: `Agent::"a"`, Action: `Action::"sql:ddl"`, Resource: `Table::"pg/public.users"`,
				Context: `{"class": "ddl", "flags": ["drop"]}`, Entities: []byte(adminAgent)},
			policies: []string{"guard-drop"}},
		{name: "connection taken from the resource's entity",
			in: TestInput{Principal: `Agent::"a"`, Action: `Action::"sql:select"`, Resource: `Table::"users"`,
				Entities: []byte(`[{"uid": {"type": "Table", "id": "users"}, "parents": [{"type": "Connection", "id": "pg"}], "attrs": {}},` + strings.TrimPrefix(adminAgent, "["))},
			allow: true, policies: []string{"scope-admin"}},
		{name: "connection outside the token",
			in:       TestInput{Principal: `Agent::"a"`, Action: `Action::"sql:select"`, Resource: `Table::"prod/public.users"`, Entities: []byte(adminAgent)},
			policies: []string{"agent-connection-scope"}},
		{name: "context connection given explicitly",
			in: TestInput{Principal: `Agent::"a"`, Action: `Action::"connect"`, Resource: `Connection::"pg"`,
				Context: `{"connection": "other"}`, Entities: []byte(adminAgent)},
			policies: []string{"agent-connection-scope"}},
		{name: "user gets nothing",
			in: TestInput{Principal: `User::"alice"`, Action: `Action::"sql:select"`, Resource: `Table::"pg/public.users"`}},
		{name: "reviewer in the approval's group decides",
			in: TestInput{Principal: `User::"erin"`, Action: `approval:decide`, Resource: `Approval::"pg/apr_1"`,
				Context:  `{"reviewers": {"__entity": {"type": "Group", "id": "admins"}}}`,
				Entities: []byte(`[{"uid": {"type": "User", "id": "erin"}, "parents": [{"type": "Group", "id": "admins"}], "attrs": {}}]`)},
			allow: true, policies: []string{"approval-reviewers"}},
		{name: "approval without its reviewer group",
			in:       TestInput{Principal: `User::"erin"`, Action: `approval:decide`, Resource: `Approval::"pg/apr_1"`},
			badInput: "is not valid for `Action::\"approval:decide\"`"},

		{name: "principal not an entity", in: TestInput{Principal: `a`, Action: `sql:select`, Resource: `Table::"pg/t"`}, badInput: `principal: want an entity like Type::"id", got "a"`},
		{name: "principal unquoted id", in: TestInput{Principal: `Agent::a`, Action: `sql:select`, Resource: `Table::"pg/t"`}, badInput: `principal: want an entity`},
		{name: "resource malformed", in: TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/t`}, badInput: `resource: want an entity`},
		{name: "unknown action", in: TestInput{Principal: `Agent::"a"`, Action: `Action::"sql:selekt"`, Resource: `Table::"pg/t"`}, badInput: `action: unknown action "sql:selekt" (known: approval:decide, approval:view, clear_text, connect, `},
		{name: "action group", in: TestInput{Principal: `Agent::"a"`, Action: `Action::"sql"`, Resource: `Table::"pg/t"`}, badInput: `unknown action "sql"`},
		{name: "action of another type", in: TestInput{Principal: `Agent::"a"`, Action: `Verb::"sql:select"`, Resource: `Table::"pg/t"`}, badInput: `action: want Action::"NAME"`},
		{name: "unknown principal type", in: TestInput{Principal: `Robot::"a"`, Action: `sql:select`, Resource: `Table::"pg/t"`}, badInput: "principal type `Robot` is not declared"},
		{name: "resource type the action does not take", in: TestInput{Principal: `Agent::"a"`, Action: `ssh:exec`, Resource: `Table::"pg/t"`}, badInput: "resource type `Table` is not valid"},
		{name: "context not JSON", in: TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/t"`, Context: `{flags: }`}, badInput: "context: want a JSON object"},
		{name: "context not an object", in: TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/t"`, Context: `["drop"]`}, badInput: "context: want a JSON object"},
		{name: "context attribute typo", in: TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/t"`, Context: `{"flag": ["drop"]}`}, badInput: `context: sql:select takes no attribute "flag" (it takes class, columns, connection, database, flags, functions, grants, settings, tables)`},
		{name: "context attribute of the wrong type", in: TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/t"`, Context: `{"flags": "drop"}`}, badInput: `context: attribute "flags" of sql:select must be a Set<String>, got "drop"`},
		{name: "context set of the wrong element type", in: TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/t"`, Context: `{"flags": [1]}`}, badInput: `must be a Set<String>, got [1]`},
		{name: "entities not JSON", in: TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/t"`, Entities: []byte(`{`)}, badInput: "entities:"},
		{name: "entity attribute typo", in: TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/t"`,
			Entities: []byte(`[{"uid": {"type": "Agent", "id": "a"}, "parents": [], "attrs": {"scope": ["read"], "scopes": [], "connections": []}}]`)},
			badInput: `entities: Agent::"a": unexpected attribute "scope"`},
		{name: "entity missing attribute", in: TestInput{Principal: `Agent::"a"`, Action: `sql:select`, Resource: `Table::"pg/t"`,
			Entities: []byte(`[{"uid": {"type": "Agent", "id": "a"}, "parents": [], "attrs": {"scopes": ["read"]}}]`)},
			badInput: `entities: Agent::"a": missing required attribute "connections"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := set.Evaluate(tt.in)
			if tt.badInput != "" {
				if err == nil || !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tt.badInput) {
					t.Fatalf("Evaluate error = %v, want ErrBadInput containing %q", err, tt.badInput)
				}
				return
			}
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if d.Allow != tt.allow || !slices.Equal(ids(d), tt.policies) || len(d.Errors) > 0 {
				t.Fatalf("Evaluate = allow %v by %v (errors %v); want allow %v by %v", d.Allow, ids(d), d.Errors, tt.allow, tt.policies)
			}
		})
	}
}

// TestEvaluateResourceInSeveralConnections covers entities that put one
// resource in more than one connection, which Decide's requests cannot.
func TestEvaluateResourceInSeveralConnections(t *testing.T) {
	set, err := Load(writeDir(t, map[string]string{"p.cedar": `
@id("b") permit (principal, action, resource in Connection::"b");
@id("a") forbid (principal, action == Action::"sql:delete", resource in Connection::"a");
@id("t") permit (principal, action, resource is Table in Connection::"c");`}))
	if err != nil {
		t.Fatal(err)
	}
	ents := []byte(`[{"uid": {"type": "Table", "id": "t"}, "parents": [{"type": "Connection", "id": "a"}, {"type": "Connection", "id": "b"}], "attrs": {}}]`)
	tests := []struct {
		action   string
		allow    bool
		policies []string
	}{
		{"sql:select", true, []string{"b"}},
		{"sql:delete", false, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			d, err := set.Evaluate(TestInput{Principal: `User::"u"`, Action: tt.action, Resource: `Table::"t"`, Entities: ents})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow || !slices.Equal(ids(d), tt.policies) {
				t.Errorf("Evaluate = allow %v by %v, want %v by %v", d.Allow, ids(d), tt.allow, tt.policies)
			}
		})
	}
}
