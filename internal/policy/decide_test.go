package policy

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"
)

const decidePolicies = `
@id("agents-read")
permit (principal is Agent, action == Action::"sql:select", resource in Connection::"pg")
when { principal.scopes.contains("read") };

@id("agents-read-again")
@note("a second permit that also matches")
permit (principal is Agent, action in Action::"sql", resource)
when { context.class == "select" && principal has on_behalf_of };

@id("prod-writes")
@approval("dba")
permit (principal is Agent, action in [Action::"sql:insert", Action::"sql:update"], resource in Connection::"prod")
when { principal.scopes.contains("write") };

@id("no-secrets")
@reason("the secrets table is off limits")
forbid (principal, action in Action::"sql", resource)
when { context.tables.contains("public.secrets") };

@id("dba-everything")
permit (principal in Group::"dba", action, resource);

@id("overflow")
forbid (principal, action == Action::"http:GET", resource) when { 9223372036854775807 + 1 > 0 };

@id("overflow-ok")
permit (principal, action == Action::"http:GET", resource);

@id("ssh-ls")
permit (principal is User, action == Action::"ssh:exec", resource is Host)
when { context.command like "ls *" };
`

func TestDecide(t *testing.T) {
	set, err := Load(writeDir(t, map[string]string{"p.cedar": decidePolicies}))
	if err != nil {
		t.Fatal(err)
	}
	prod := Resource{Type: Table, ID: "prod/public.orders", Connection: "prod"}
	tests := []struct {
		name      string
		req       Request
		allow     bool
		policies  []string
		annotKey  string // an annotation the first determining policy must carry
		annotVal  string
		errSubstr string // a substring of the first EvalError; "" for none
	}{
		{name: "permit determined by two policies",
			req:   Request{Principal: agent("read"), Action: "sql:select", Resource: usersTable(), Context: map[string]any{"class": "select"}},
			allow: true, policies: []string{"agents-read", "agents-read-again"}, annotKey: "id", annotVal: "agents-read"},
		{name: "permit carries approval annotation",
			req:   Request{Principal: agent("write"), Action: "sql:update", Resource: prod},
			allow: true, policies: []string{"prod-writes"}, annotKey: "approval", annotVal: "dba"},
		{name: "forbid beats permits and carries its reason",
			req: Request{Principal: agent("read"), Action: "sql:select", Resource: usersTable(),
				Context: map[string]any{"class": "select", "tables": []string{"public.users", "public.secrets"}}},
			allow: false, policies: []string{"no-secrets"}, annotKey: "reason", annotVal: "the secrets table is off limits"},
		{name: "default deny names no policy",
			req:   Request{Principal: agent("read"), Action: "sql:delete", Resource: usersTable()},
			allow: false},
		{name: "group membership",
			req:   Request{Principal: Principal{Type: User, ID: "bob", Groups: []string{"ops", "dba"}}, Action: "k8s:delete", Resource: Resource{Type: Namespace, ID: "k/default", Connection: "k"}},
			allow: true, policies: []string{"dba-everything"}},
		{name: "agent in group",
			req:   Request{Principal: Principal{Type: Agent, ID: "x", Groups: []string{"dba"}}, Action: "mcp:call", Resource: Resource{Type: Tool, ID: "m/query", Connection: "m"}},
			allow: true, policies: []string{"dba-everything"}},
		{name: "user without group",
			req:   Request{Principal: Principal{Type: User, ID: "bob"}, Action: "sql:select", Resource: usersTable()},
			allow: false},
		{name: "like pattern over context",
			req:   Request{Principal: Principal{Type: User, ID: "bob"}, Action: "ssh:exec", Resource: Resource{Type: Host, ID: "h/web1", Connection: "h"}, Context: map[string]any{"command": "ls -la"}},
			allow: true, policies: []string{"ssh-ls"}},
		{name: "like pattern no match",
			req:   Request{Principal: Principal{Type: User, ID: "bob"}, Action: "ssh:exec", Resource: Resource{Type: Host, ID: "h/web1", Connection: "h"}, Context: map[string]any{"command": "rm -rf /"}},
			allow: false},
		{name: "unknown action",
			req:   Request{Principal: agent("read"), Action: "sql:selekt", Resource: usersTable()},
			allow: false, errSubstr: `unknown action "sql:selekt"`},
		{name: "action group is not a request action",
			req:   Request{Principal: agent("read"), Action: "sql", Resource: usersTable()},
			allow: false, errSubstr: `unknown action "sql"`},
		{name: "principal type not taken",
			req:   Request{Principal: Principal{Type: Group, ID: "dba"}, Action: "sql:select", Resource: usersTable()},
			allow: false, errSubstr: `principal type "Group"`},
		{name: "resource type not taken",
			req:   Request{Principal: agent("read"), Action: "ssh:exec", Resource: usersTable()},
			allow: false, errSubstr: `resource type "Table" is not valid for action "ssh:exec"`},
		{name: "unsupported context value",
			req:   Request{Principal: agent("read"), Action: "sql:select", Resource: usersTable(), Context: map[string]any{"tables": []int{1}}},
			allow: false, errSubstr: `context "tables": unsupported type []int`},
		{name: "context value of the wrong type",
			req:   Request{Principal: agent("read"), Action: "sql:select", Resource: usersTable(), Context: map[string]any{"class": "select", "tables": "public.secrets"}},
			allow: false, errSubstr: `context "tables": must be a Set<String>, got "public.secrets"`},
		{name: "context attribute the action does not have",
			req:   Request{Principal: agent("read"), Action: "sql:select", Resource: usersTable(), Context: map[string]any{"verb": "get"}},
			allow: false, errSubstr: `context "verb": no such attribute for sql:select`},
		{name: "resource without id",
			req:   Request{Principal: agent("read"), Action: "connect", Resource: Resource{Type: Connection}},
			allow: false, errSubstr: `need an id`},
		{name: "evaluation error skips the policy, as Cedar does",
			req:   Request{Principal: agent("read"), Action: "http:GET", Resource: Resource{Type: Connection, ID: "api"}, Context: map[string]any{"path": "/x"}},
			allow: true, policies: []string{"overflow-ok"}, errSubstr: `policy "overflow"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := set.Decide(tt.req)
			if d.Allow != tt.allow || !slices.Equal(ids(d), tt.policies) {
				t.Fatalf("Decide = allow %v by %v (errors %v); want allow %v by %v", d.Allow, ids(d), d.Errors, tt.allow, tt.policies)
			}
			if tt.annotKey != "" && d.Policies[0].Annotations[tt.annotKey] != tt.annotVal {
				t.Errorf("annotation %q = %q, want %q (all: %v)", tt.annotKey, d.Policies[0].Annotations[tt.annotKey], tt.annotVal, d.Policies[0].Annotations)
			}
			switch {
			case tt.errSubstr == "" && len(d.Errors) > 0:
				t.Errorf("unexpected errors: %v", d.Errors)
			case tt.errSubstr != "" && (len(d.Errors) == 0 || !strings.Contains(d.Errors[0].Error(), tt.errSubstr)):
				t.Errorf("errors = %v, want one containing %q", d.Errors, tt.errSubstr)
			}
			for _, p := range d.Policies {
				if p.File != "p.cedar" || p.Line == 0 {
					t.Errorf("policy %q has no source: %+v", p.ID, p)
				}
			}
		})
	}
}

func TestDecisionReason(t *testing.T) {
	forbid := PolicyInfo{ID: "guard-drop", Annotations: map[string]string{"reason": "DROP is not allowed"}}
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"default deny", Decision{}, "denied: no policy permits this request"},
		{"bad request", Decision{Errors: []EvalError{{Msg: `unknown action "x"`}}}, `denied: unknown action "x"`},
		{"forbid with reason", Decision{Policies: []PolicyInfo{forbid}}, `denied by policy "guard-drop": DROP is not allowed`},
		{"two forbids", Decision{Policies: []PolicyInfo{forbid, {ID: "other"}}}, `denied by policy "guard-drop": DROP is not allowed; policy "other"`},
		{"allow", Decision{Allow: true, Policies: []PolicyInfo{{ID: "scope-read"}}}, `allowed by policy "scope-read"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Reason(); got != tt.want {
				t.Errorf("Reason() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestToValue(t *testing.T) {
	good := []any{"s", true, 1, int8(1), int16(1), int32(1), int64(1), uint(1), uint8(1), uint16(1), uint32(1), uint64(1), []string{"a"}, cedar.Long(3)}
	for _, v := range good {
		if _, err := toValue(v); err != nil {
			t.Errorf("toValue(%T) = %v", v, err)
		}
	}
	for _, v := range []any{uint64(math.MaxUint64), 1.5, nil, map[string]string{}} {
		if _, err := toValue(v); err == nil {
			t.Errorf("toValue(%T %v) succeeded, want an error", v, v)
		}
	}
}

// TestIndexMatchesFullEvaluation checks that the per-action index never
// changes a decision: every request is decided both through Decide and by
// cedar-go over every policy.
func TestIndexMatchesFullEvaluation(t *testing.T) {
	set, err := Load(writeDir(t, map[string]string{"bench.cedar": benchPolicies(200), "p.cedar": decidePolicies}))
	if err != nil {
		t.Fatal(err)
	}
	full := cedar.NewPolicySet()
	for i, p := range set.compiled {
		full.Add(cedar.PolicyID(set.policies[i].ID), p)
	}
	principals := []Principal{agent("read"), agent("write", "ddl"), agent("admin"), {Type: Agent, ID: "agent-7", Scopes: []string{"read"}, Connections: []string{"conn-3"}, Groups: []string{"team-1"}},
		{Type: User, ID: "bob"}, {Type: User, ID: "carol", Groups: []string{"dba", "team-2"}}}
	resources := map[string][]Resource{
		Table:      {usersTable(), {Type: Table, ID: "conn-3/public.t3", Connection: "conn-3"}, {Type: Table, ID: "prod/public.orders", Connection: "prod"}},
		Connection: {{Type: Connection, ID: "pg"}, {Type: Connection, ID: "conn-3"}},
		Namespace:  {{Type: Namespace, ID: "conn-3/default", Connection: "conn-3"}},
		Host:       {{Type: Host, ID: "conn-1/web", Connection: "conn-1"}},
		Tool:       {{Type: Tool, ID: "conn-2/query", Connection: "conn-2"}},
	}
	contexts := []map[string]any{
		nil,
		{"class": "select", "tables": []string{"public.t3", "public.secrets"}, "flags": []string{"multi_statement"}},
		{"class": "update", "tables": []string{"public.t7"}, "columns": []string{"ssn"}, "flags": []string{"no_where"}},
		{"namespace": "kube-system", "verb": "delete", "kind": "secrets", "command": "ls -la", "method": "POST", "path": "/admin/x", "tool": "query"},
	}
	actions := slices.Sorted(maps.Keys(set.schema.actions))
	n, allows, forbids := 0, 0, 0
	for _, action := range actions {
		a := set.schema.actions[action]
		for _, p := range principals {
			for rt := range a.resources {
				for _, r := range resources[rt] {
					for _, all := range contexts {
						c := maps.Clone(all)
						maps.DeleteFunc(c, func(k string, _ any) bool { _, ok := a.context[cedar.String(k)]; return !ok })
						req := Request{Principal: p, Action: action, Resource: r, Context: c}
						got := set.Decide(req)
						ctx, err := contextRecord(a, r.connectionName(), c)
						if err != nil {
							t.Fatal(err)
						}
						ents := &requestEntities{principal: p.entity(), resource: r.entity(), actions: set.schema.actionEntities}
						dec, diag := cedar.Authorize(full, ents, cedar.Request{Principal: ents.principal.UID, Action: a.uid, Resource: ents.resource.UID, Context: ctx})
						var want []string
						for _, r := range diag.Reasons {
							want = append(want, string(r.PolicyID))
						}
						slices.Sort(want)
						gotIDs := ids(got)
						slices.Sort(gotIDs)
						if got.Allow != (dec == cedar.Allow) || !slices.Equal(gotIDs, want) || len(got.Errors) != len(diag.Errors) {
							t.Fatalf("%s: Decide = %v %v %v; full evaluation = %v %v %v", fmt.Sprint(req), got.Allow, gotIDs, got.Errors, dec, want, diag.Errors)
						}
						n++
						if got.Allow {
							allows++
						} else if len(got.Policies) > 0 {
							forbids++
						}
					}
				}
			}
		}
	}
	if n < 500 || allows < 50 || forbids < 50 {
		t.Fatalf("compared %d requests, %d allowed, %d forbidden: too few to show anything", n, allows, forbids)
	}
	t.Logf("compared %d requests, %d allowed, %d forbidden", n, allows, forbids)
}
