package policy

import (
	"fmt"
	"strings"
	"testing"
)

// benchPolicies returns n policies shaped like a real deployment: scope
// permits per connection, guardrail forbids over flags and tables, group
// grants for humans, and a few for the other protocols.
func benchPolicies(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		conn := fmt.Sprintf("conn-%d", i%10)
		switch i % 8 {
		case 0:
			fmt.Fprintf(&b, "@id(\"read-%d\")\npermit (principal is Agent, action in [Action::\"connect\", Action::\"sql:select\"], resource in Connection::%q)\nwhen { principal.scopes.contains(\"read\") && principal.connections.contains(%q) };\n", i, conn, conn)
		case 1:
			fmt.Fprintf(&b, "@id(\"write-%d\")\n@approval(\"dba\")\npermit (principal is Agent, action in [Action::\"sql:insert\", Action::\"sql:update\", Action::\"sql:delete\"], resource in Connection::%q)\nwhen { principal.scopes.contains(\"write\") && principal has on_behalf_of && !context.flags.contains(\"no_where\") };\n", i, conn)
		case 2:
			fmt.Fprintf(&b, "@id(\"forbid-table-%d\")\n@reason(\"table t%d is off limits\")\nforbid (principal is Agent, action in Action::\"sql\", resource)\nwhen { context.tables.contains(\"public.t%d\") };\n", i, i, i)
		case 3:
			fmt.Fprintf(&b, "@id(\"forbid-col-%d\")\n@reason(\"column c%d is sensitive\")\nforbid (principal, action == Action::\"sql:select\", resource in Connection::%q)\nwhen { context.columns.containsAny([\"c%d\", \"ssn_%d\"]) && !(principal is Agent && principal.scopes.contains(\"pii\")) };\n", i, i, conn, i, i)
		case 4:
			fmt.Fprintf(&b, "@id(\"group-%d\")\npermit (principal in Group::\"team-%d\", action in Action::\"sql\", resource in Connection::%q)\nwhen { context.class == \"select\" || context.class == \"utility\" };\n", i, i%5, conn)
		case 5:
			fmt.Fprintf(&b, "@id(\"flag-%d\")\n@reason(\"flag %d\")\nforbid (principal is Agent, action in Action::\"sql\", resource)\nwhen { context.flags.containsAny([\"drop\", \"truncate\", \"f%d\"]) && context.connection == %q };\n", i, i, i, conn)
		case 6:
			fmt.Fprintf(&b, "@id(\"k8s-%d\")\npermit (principal is Agent, action in [Action::\"k8s:get\", Action::\"k8s:list\"], resource in Connection::%q)\nwhen { context.namespace != \"kube-system\" && principal.scopes.contains(\"read\") };\n", i, conn)
		case 7:
			fmt.Fprintf(&b, "@id(\"mcp-%d\")\npermit (principal is Agent, action == Action::\"mcp:call\", resource == Tool::\"%s/tool-%d\")\nwhen { principal.scopes.contains(\"tools\") };\n", i, conn, i)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// BenchmarkDecide200 decides a typical SQL statement against 200 policies
// (all of which mention sql actions or none, so roughly 130 are candidates).
func BenchmarkDecide200(b *testing.B) {
	set, err := Load(writeDir(b, map[string]string{"bench.cedar": benchPolicies(200)}))
	if err != nil {
		b.Fatal(err)
	}
	if set.Len() != 200 {
		b.Fatalf("loaded %d policies", set.Len())
	}
	req := Request{
		Principal: Principal{Type: Agent, ID: "agent-7", Scopes: []string{"read", "write"}, OnBehalfOf: "alice",
			Connections: []string{"conn-4"}, Groups: []string{"team-1"}},
		Action:   "sql:select",
		Resource: Resource{Type: Table, ID: "conn-4/public.orders", Connection: "conn-4"},
		Context: map[string]any{
			"class":   "select",
			"tables":  []string{"public.orders", "public.customers"},
			"columns": []string{"id", "total", "email"},
			"flags":   []string{"multi_statement"},
		},
	}
	if d := set.Decide(req); !d.Allow || len(d.Errors) > 0 {
		b.Fatalf("benchmark request not allowed: %s %v", d.Reason(), d.Errors)
	}
	b.ReportAllocs()
	for b.Loop() {
		set.Decide(req)
	}
}

// BenchmarkLoad200 is the cost of a reload: read, parse, validate, index.
func BenchmarkLoad200(b *testing.B) {
	dir := writeDir(b, map[string]string{"bench.cedar": benchPolicies(200)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
