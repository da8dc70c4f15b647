package sqlguard

import (
	"encoding/json"
	"hash/maphash"
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// A function marked IMMUTABLE or STABLE may still call a volatile one
// (PostgreSQL does not check), so for functions written in SQL or PL/pgSQL
// the catalog reads the body: the function is read-only only if every
// statement and expression in it is a read that calls only read-only
// functions, and nothing in it runs SQL built at run time (EXECUTE), calls
// a procedure or ends a transaction.

// Body is what a function's source says it does, parsed once.
type Body struct {
	// Queries are the analyses of every statement and expression.
	Queries []*Analysis
	// Dynamic: the body runs SQL the analysis cannot see (EXECUTE,
	// dynamic FOR and OPEN, RETURN QUERY EXECUTE), calls a procedure, or
	// commits; or the source could not be parsed.
	Dynamic bool
}

// BodyCache keeps parsed bodies between catalog loads, keyed by the
// source, so an unchanged function is not parsed again. Safe for
// concurrent use.
type BodyCache struct {
	seed maphash.Seed
	mu   sync.Mutex
	m    map[uint64]*Body
	used map[uint64]*Body // this load's entries; the next load keeps only these
}

// NewBodyCache returns an empty cache.
func NewBodyCache() *BodyCache {
	return &BodyCache{seed: maphash.MakeSeed(), m: map[uint64]*Body{}, used: map[uint64]*Body{}}
}

// parse returns the body of source in language lang ("sql" or "plpgsql"),
// from the cache when the same source was parsed before.
func (bc *BodyCache) parse(lang, source string) *Body {
	var h maphash.Hash
	h.SetSeed(bc.seed)
	h.WriteString(lang)
	h.WriteByte(0)
	h.WriteString(source)
	k := h.Sum64()
	bc.mu.Lock()
	b, ok := bc.m[k]
	bc.mu.Unlock()
	if !ok {
		b = parseBody(lang, source)
	}
	bc.mu.Lock()
	bc.used[k] = b
	bc.mu.Unlock()
	return b
}

// rotate forgets the bodies the last load did not use.
func (bc *BodyCache) rotate() {
	bc.mu.Lock()
	bc.m, bc.used = bc.used, map[uint64]*Body{}
	bc.mu.Unlock()
}

func parseBody(lang, source string) *Body {
	switch lang {
	case "sql":
		return sqlBody(source)
	case "plpgsql":
		return plpgsqlBody(source)
	}
	return &Body{Dynamic: true}
}

// sqlBody parses a SQL function: source is its whole definition
// (pg_get_functiondef), whose body is either a string constant (AS '…')
// or SQL-standard statements (BEGIN ATOMIC … END).
func sqlBody(source string) *Body {
	if tooDeep(source) {
		return &Body{Dynamic: true}
	}
	tree, err := pg_query.Parse(source)
	if err != nil || len(tree.GetStmts()) != 1 {
		return &Body{Dynamic: true}
	}
	cf := tree.GetStmts()[0].GetStmt().GetCreateFunctionStmt()
	if cf == nil {
		return &Body{Dynamic: true}
	}
	if sb := cf.GetSqlBody(); sb != nil {
		b := &Body{}
		var stmts []*pg_query.Node
		if l := sb.GetList(); l != nil {
			for _, it := range l.GetItems() {
				if il := it.GetList(); il != nil {
					stmts = append(stmts, il.GetItems()...)
				} else {
					stmts = append(stmts, it)
				}
			}
		} else {
			stmts = []*pg_query.Node{sb}
		}
		for _, n := range stmts {
			st := analyzeStmt(n)
			b.Queries = append(b.Queries, statementsAnalysis([]Statement{st}))
		}
		return b
	}
	for _, o := range cf.GetOptions() {
		d := o.GetDefElem()
		if d == nil || d.Defname != "as" {
			continue
		}
		items := d.GetArg().GetList().GetItems()
		if len(items) != 1 {
			return &Body{Dynamic: true} // a C function's file and symbol
		}
		a := Analyze(items[0].GetString_().GetSval())
		if a.Class == ClassUnparsed {
			return &Body{Dynamic: true}
		}
		return &Body{Queries: []*Analysis{a}}
	}
	return &Body{Dynamic: true}
}

// plpgsqlDynamic are PL/pgSQL statements whose SQL is not in the source,
// or that do what no read does.
var plpgsqlDynamic = map[string]bool{
	"PLpgSQL_stmt_dynexecute": true, "PLpgSQL_stmt_dynfors": true, "PLpgSQL_stmt_call": true,
	"PLpgSQL_stmt_commit": true, "PLpgSQL_stmt_rollback": true,
}

// plpgsqlBody parses a PL/pgSQL function (its whole definition) and
// analyses every embedded statement and expression: parseMode 0 is a
// statement, 2 an expression, 3 to 5 an assignment target := expression.
func plpgsqlBody(source string) *Body {
	if tooDeep(source) {
		return &Body{Dynamic: true}
	}
	js, err := pg_query.ParsePlPgSqlToJSON(source)
	if err != nil {
		return &Body{Dynamic: true}
	}
	var tree any
	if err := json.Unmarshal([]byte(js), &tree); err != nil {
		return &Body{Dynamic: true}
	}
	b := &Body{}
	var walk func(v any)
	walk = func(v any) {
		if b.Dynamic {
			return
		}
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				if plpgsqlDynamic[k] {
					b.Dynamic = true
					return
				}
				if k == "dynquery" {
					b.Dynamic = true // OPEN … FOR EXECUTE, RETURN QUERY EXECUTE
					return
				}
				if k == "PLpgSQL_expr" {
					if m, ok := e.(map[string]any); ok {
						b.expr(m)
					}
					continue
				}
				walk(e)
			}
		}
	}
	walk(tree)
	return b
}

func (b *Body) expr(m map[string]any) {
	q, _ := m["query"].(string)
	mode, _ := m["parseMode"].(float64)
	switch {
	case mode == 0:
	case mode == 2:
		q = "SELECT " + q
	case mode >= 3 && mode <= 5:
		i := strings.Index(q, ":=")
		if i < 0 {
			b.Dynamic = true
			return
		}
		q = "SELECT " + q[i+2:]
	default:
		b.Dynamic = true
		return
	}
	a := Analyze(q)
	if a.Class == ClassUnparsed {
		b.Dynamic = true
		return
	}
	b.Queries = append(b.Queries, a)
}

// statementsAnalysis folds statements into an Analysis, as analyzeTree does
// for a parsed text.
func statementsAnalysis(sts []Statement) *Analysis {
	a := &Analysis{}
	var calls, ops, casts, syntax refSet
	var attrs ordered[string]
	var tables set
	for _, st := range sts {
		if a.Class == "" || st.Class.rank() > a.Class.rank() {
			a.Class = st.Class
		}
		tables.addAll(st.Tables)
		for _, f := range st.Calls {
			calls.add(f)
		}
		for _, f := range st.Operators {
			ops.add(f)
		}
		for _, f := range st.Attributes {
			attrs.add(f)
		}
		for _, f := range st.Casts {
			casts.add(f)
		}
		for _, f := range st.SyntaxCalls {
			syntax.add(f)
		}
		a.Flags = append(a.Flags, st.Flags...)
	}
	a.Statements = sts
	a.Tables = tables.sorted()
	a.Calls, a.Operators, a.Attributes, a.Casts, a.SyntaxCalls = calls.list(), ops.list(), attrs.list(), casts.list(), syntax.list()
	return a
}
