package sqlguard

import (
	"slices"
	"testing"
)

func TestCatalogNotReadOnly(t *testing.T) {
	fn := func(schema, name string, vol, kind byte, args int) Func {
		return Func{Schema: schema, Name: name, Volatile: vol, Kind: kind, Args: args}
	}
	cat := NewCatalog(CatalogData{
		Builtin: []Func{
			fn("pg_catalog", "lower", 'i', 'f', 1), fn("pg_catalog", "now", 's', 'f', 0),
			fn("pg_catalog", "nextval", 'v', 'f', 1), fn("pg_catalog", "random", 'v', 'f', 0),
			fn("pg_catalog", "count", 'i', 'a', 1), fn("pg_catalog", "pg_read_file", 'v', 'f', 1),
			fn("pg_catalog", "set_config", 'v', 'f', 3),
		},
		User: []Func{
			fn("public", "evil", 'v', 'f', 0), fn("public", "calm", 's', 'f', 1),
			fn("app", "lower", 'v', 'f', 1), // overloads a built-in name
			{Schema: "public", Name: "definer", Volatile: 's', Kind: 'f', SecurityDefiner: true},
			fn("public", "proc", 'i', 'p', 0), fn("public", "declared", 'v', 'f', 0),
			fn("public", "attr", 'v', 'f', 1), fn("public", "two", 'v', 'f', 2),
		},
		Operators:        map[string][]Func{"###": {fn("public", "opfn", 'v', 'f', 2)}, "@@@": {fn("public", "calmop", 'i', 'f', 2)}},
		Casts:            map[string][]Func{"evil_t": {fn("public", "castfn", 'v', 'f', 1)}},
		Views:            map[string][]Func{"public.v": {fn("public", "evil", 'v', 'f', 0)}},
		ViewViews:        map[string][]string{"public.v_outer": {"public.v"}},
		DeclaredReadOnly: []string{"public.declared"},
	})
	tests := []struct {
		sql  string
		want []FuncRef
	}{
		{"SELECT now(), count(*), random(), pg_catalog.lower('a')", nil},
		{"SELECT nextval('s')", []FuncRef{{"pg_catalog", "nextval"}}},
		{"SELECT pg_read_file('x')", []FuncRef{{"pg_catalog", "pg_read_file"}}},
		{"SELECT evil()", []FuncRef{{"public", "evil"}}},
		{"SELECT calm(1), declared()", nil},
		{"SELECT definer()", []FuncRef{{"public", "definer"}}},
		{"CALL proc()", []FuncRef{{"public", "proc"}}},
		{"SELECT lower('a')", []FuncRef{{"app", "lower"}}}, // every candidate counts
		{"SELECT pg_catalog.lower('a')", nil},
		{"SELECT nosuch()", []FuncRef{{"", "nosuch"}}},
		{"SELECT other.evil()", []FuncRef{{"other", "evil"}}},
		{"SELECT 1 ### 2", []FuncRef{{"public", "opfn"}}},
		{"SELECT 1 @@@ 2", nil},
		{"SELECT t.attr, t.two FROM t", []FuncRef{{"public", "attr"}}},
		{"SELECT 'x'::evil_t", []FuncRef{{"public", "castfn"}}},
		{"SELECT * FROM v", []FuncRef{{"public", "evil"}}},
		{"SELECT * FROM v_outer", []FuncRef{{"public", "evil"}}},
	}
	for _, tt := range tests {
		a := Analyze(tt.sql)
		if a.Class == ClassUnparsed {
			t.Fatalf("%s: %v", tt.sql, a.Err)
		}
		if got := cat.NotReadOnly(a); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.sql, got, tt.want)
		}
	}
	// A volatile function the server may call implicitly (a type's =)
	// counts for every statement that evaluates expressions.
	imp := NewCatalog(CatalogData{Builtin: []Func{fn("pg_catalog", "count", 'i', 'a', 1)},
		Implicit: []Func{fn("public", "ticket_eq", 'v', 'f', 2), fn("public", "ticket_lt", 'i', 'f', 2)}})
	for sql, want := range map[string]int{"SELECT * FROM t ORDER BY k": 1, "SELECT count(*) FROM t": 1, "BEGIN": 0, "SET application_name = 'x'": 0} {
		if got := imp.NotReadOnly(Analyze(sql)); len(got) != want {
			t.Errorf("implicit, %s: %v, want %d", sql, got, want)
		}
	}
	// OPERATOR(ops.###) names the operator's schema, not its function's.
	opc := NewCatalog(CatalogData{Operators: map[string][]Func{"###": {{Schema: "public", Name: "op_fn", Volatile: 'v', Kind: 'f', OpSchema: "ops"}}}})
	if got := opc.NotReadOnly(Analyze("SELECT 1 OPERATOR(ops.###) 2")); len(got) != 1 {
		t.Errorf("OPERATOR(ops.###): %v", got)
	}
	// Syntax an older server reads as a call.
	syn := NewCatalog(CatalogData{User: []Func{fn("public", "json_scalar", 'v', 'f', 1)}})
	if got := syn.NotReadOnly(Analyze("SELECT json_scalar('x')")); len(got) != 1 {
		t.Errorf("json_scalar: %v", got)
	}
	if got := NewCatalog(CatalogData{}).NotReadOnly(Analyze("SELECT json_scalar('x')")); len(got) != 0 {
		t.Errorf("json_scalar with no such function: %v", got)
	}
	// Without a catalog nothing is known to be read-only.
	if got := NewCatalog(CatalogData{}).NotReadOnly(Analyze("SELECT now()")); len(got) != 1 {
		t.Errorf("empty catalog: %v", got)
	}
}
