package sqlguard

import "slices"

// Func is one function as the server's catalog (pg_proc) describes it.
type Func struct {
	Schema, Name string
	// Volatile is pg_proc.provolatile: 'i' immutable, 's' stable, 'v'
	// volatile.
	Volatile byte
	// Kind is pg_proc.prokind: 'f' function, 'p' procedure, 'a' aggregate,
	// 'w' window function.
	Kind            byte
	SecurityDefiner bool
	// Args and Defaults are pg_proc.pronargs and pronargdefaults: a
	// function takes from Args-Defaults to Args arguments.
	Args, Defaults int
	// OpSchema, for a function behind an operator, is the operator's
	// schema (OPERATOR(ops.###) may name a function in public).
	OpSchema string
	// OID identifies the function; Lang is its language, and Source, for
	// SQL and PL/pgSQL functions, its definition (pg_get_functiondef),
	// which the catalog reads to see what a stable function really calls.
	OID    uint32
	Lang   string
	Source string
}

// takesOne reports whether f can be called with one argument, as attribute
// notation calls it.
func (f Func) takesOne() bool { return f.Args-f.Defaults <= 1 && f.Args >= 1 }

// CatalogData is what the engine reads from the server for a Catalog.
type CatalogData struct {
	Builtin []Func // pg_catalog's functions
	User    []Func // every other schema's functions
	// Operators: operators outside pg_catalog, by name, as the functions
	// behind them. Casts: cast functions outside pg_catalog, and the
	// functions of domain CHECK constraints, by target type name. Views:
	// the functions each view outside pg_catalog calls, by "schema.view"
	// (as Analysis.Tables names it), and the views each view reads
	// (ViewViews), so that a view over a view counts.
	Operators map[string][]Func
	Casts     map[string][]Func
	// Implicit: functions the server may call with nothing in the text to
	// say so: those behind operators outside pg_catalog (a type's = and <
	// serve CASE, IN, USING, DISTINCT, ORDER BY, GROUP BY, GREATEST,
	// array_position), the support functions of operator classes outside
	// pg_catalog, cast functions outside pg_catalog (a cast may be
	// implicit, or to a domain over its target), and the functions of
	// domain CHECK constraints (they run for any value that becomes of the
	// domain: a domain over it, a field of a composite, a function's
	// argument or result, a PL/pgSQL variable).
	Implicit []Func
	// AggSupport: for each aggregate (by OID), the OIDs of its support
	// functions (transition, final, combine, serial, moving): an aggregate
	// is read-only only if they all are.
	AggSupport map[uint32][]uint32
	Views      map[string][]Func
	ViewViews  map[string][]string
	// DeclaredReadOnly: "schema.name" of functions an administrator
	// declares read-only.
	DeclaredReadOnly []string
	// Bodies keeps parsed function bodies from one load to the next; nil
	// parses every body afresh.
	Bodies *BodyCache
}

// Catalog is what one upstream database's catalog says about the functions
// and operators a statement can reach, for deciding which calls are reads.
// It is built by the engine from the server (pg_proc, pg_operator) and is
// read-only once built.
type Catalog struct {
	// builtin: every function name in pg_catalog, and whether every
	// overload of it is a non-volatile function; builtinFuncs the
	// functions themselves (for attribute notation, which calls any
	// one-argument function, built-ins included).
	builtin      map[string]bool
	builtinFuncs map[string][]Func
	// byOID: every function, for aggregates' support functions.
	byOID      map[uint32]Func
	aggSupport map[uint32][]uint32
	// user: functions outside pg_catalog, by name.
	user map[string][]Func
	// ops: operators outside pg_catalog, by name, as their implementing
	// functions; casts: cast functions by target type; views: the
	// functions a view reaches, through other views too.
	ops      map[string][]Func
	casts    map[string][]Func
	views    map[string][]Func
	implicit []Func
	// declared: "schema.name" of functions an administrator declares
	// read-only (config), whatever the catalog says.
	declared map[string]bool
	// bodyRO: for each function whose body was read, whether every part
	// of it is a read (computed once, when the catalog is built).
	bodyRO map[uint32]bool
}

// NewCatalog builds a catalog from what the server's catalog holds.
func NewCatalog(d CatalogData) *Catalog {
	c := &Catalog{builtin: map[string]bool{}, builtinFuncs: map[string][]Func{}, user: map[string][]Func{},
		ops: d.Operators, casts: d.Casts, views: map[string][]Func{}, declared: map[string]bool{},
		byOID: map[uint32]Func{}, aggSupport: d.AggSupport}
	for _, f := range d.Builtin {
		safe, seen := c.builtin[f.Name]
		c.builtin[f.Name] = (safe || !seen) && f.Volatile != 'v' && f.Kind != 'p'
		c.builtinFuncs[f.Name] = append(c.builtinFuncs[f.Name], f)
		if f.OID != 0 {
			c.byOID[f.OID] = f
		}
	}
	for _, f := range d.User {
		c.user[f.Name] = append(c.user[f.Name], f)
		if f.OID != 0 {
			c.byOID[f.OID] = f
		}
	}
	for _, n := range d.DeclaredReadOnly {
		c.declared[n] = true
	}
	c.readBodies(d)
	for _, f := range d.Implicit {
		if !c.readOnlyUser(f) {
			c.implicit = append(c.implicit, f)
		}
	}
	// A view reaches the functions of every view it reads, transitively.
	for v := range d.Views {
		c.views[v] = nil
	}
	for v := range d.ViewViews {
		c.views[v] = nil
	}
	for v := range c.views {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(x string) {
			if seen[x] {
				return
			}
			seen[x] = true
			c.views[v] = append(c.views[v], d.Views[x]...)
			for _, y := range d.ViewViews[x] {
				walk(y)
			}
		}
		walk(v)
	}
	return c
}

// evaluates reports whether statements of class c evaluate expressions
// (and so may compare, sort or hash values); SET, LOCK, LISTEN, NOTIFY,
// SHOW, transaction control and the like take only literals and names.
func (c Class) evaluates() bool {
	switch c {
	case ClassTransaction, ClassSet, ClassListen, ClassNotify, ClassLock, ClassUtility, ClassLoad, ClassUnparsed:
		return false
	}
	return true
}

// QualifiedName names schema.name as Analysis.Tables does.
func QualifiedName(schema, name string) string { return quoteIdent(schema) + "." + quoteIdent(name) }

// VolatileReadOnly are pg_catalog functions marked volatile that only read
// or compute: their results change between calls (clocks, random numbers,
// sizes, monitoring), but they change nothing. Every other volatile
// built-in (nextval, setval, advisory locks, pg_import_system_collations,
// set_config, large objects, signals, …) is not a read.
var VolatileReadOnly = []string{
	"clock_timestamp", "timeofday", "random", "random_normal", "setseed", "gen_random_uuid",
	"current_query", "currval", "lastval", "pg_sequence_last_value",
	"pg_sleep", "pg_sleep_for", "pg_sleep_until",
	"pg_database_size", "pg_relation_size", "pg_table_size", "pg_indexes_size",
	"pg_total_relation_size", "pg_tablespace_size",
	"pg_is_in_recovery", "pg_jit_available", "pg_blocking_pids", "pg_safe_snapshot_blocking_pids",
	"pg_lock_status", "pg_notification_queue_usage", "pg_partition_tree", "pg_partition_ancestors",
	"pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_current_wal_flush_lsn",
	"pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn", "pg_last_xact_replay_timestamp",
	"pg_is_wal_replay_paused", "pg_get_wal_replay_pause_state",
	"pg_xact_status", "txid_status", "pg_xact_commit_timestamp", "pg_xact_commit_timestamp_origin",
	"pg_last_committed_xact", "pg_collation_actual_version", "pg_database_collation_actual_version",
	"pg_stat_have_stats", "pg_stat_clear_snapshot",
	"pg_stat_get_xact_blocks_fetched", "pg_stat_get_xact_blocks_hit", "pg_stat_get_xact_function_calls",
	"pg_stat_get_xact_function_self_time", "pg_stat_get_xact_function_total_time", "pg_stat_get_xact_numscans",
	"pg_stat_get_xact_tuples_deleted", "pg_stat_get_xact_tuples_fetched", "pg_stat_get_xact_tuples_hot_updated",
	"pg_stat_get_xact_tuples_inserted", "pg_stat_get_xact_tuples_returned", "pg_stat_get_xact_tuples_updated",
	"pg_get_backend_memory_contexts",
}

// readOnlyBuiltin reports whether the pg_catalog function name is known to
// be read-only: every overload is non-volatile, or it is listed in
// VolatileReadOnly; and it is not a risky function.
func (c *Catalog) readOnlyBuiltin(name string) bool {
	if isRisky(name) {
		return false
	}
	return c.builtin[name] || slices.Contains(VolatileReadOnly, name)
}

// readOnlyUser reports whether a function outside pg_catalog is taken as
// read-only: declared so by an administrator, or an immutable or stable
// function, aggregate or window function that does not run with its
// owner's rights. A stable function can still call a volatile one; the
// read-only transaction of read-scoped sessions is the second wall against
// that (docs/security.md).
func (c *Catalog) readOnlyUser(f Func) bool {
	if c.declared[f.Schema+"."+f.Name] {
		return true
	}
	if isRisky(f.Name) || f.SecurityDefiner || f.Kind == 'p' {
		return false
	}
	if ro, ok := c.bodyRO[f.OID]; ok && f.OID != 0 && !ro {
		return false
	}
	if f.Kind == 'a' {
		// An aggregate does what its support functions do (pg_proc calls
		// every aggregate immutable).
		for _, oid := range c.aggSupport[f.OID] {
			sf, ok := c.byOID[oid]
			switch {
			case !ok:
				return false
			case sf.Schema == "pg_catalog":
				if !c.readOnlyBuiltin(sf.Name) {
					return false
				}
			case sf.Kind == 'a' || !c.readOnlyUser(sf):
				return false
			}
		}
	}
	return f.Volatile == 'i' || f.Volatile == 's'
}

// readBodies decides, for every SQL and PL/pgSQL function outside
// pg_catalog, whether its body is a read: every statement and expression
// in it reads and calls only what is read-only, and nothing in it runs
// dynamic SQL. Bodies call each other, so this is a fixed point: every
// body starts read-only and loses it when something it may call has lost
// it, until nothing changes (recursive functions stay read-only unless
// something else makes them not).
func (c *Catalog) readBodies(d CatalogData) {
	bc := d.Bodies
	if bc == nil {
		bc = NewBodyCache()
	}
	defer bc.rotate()
	bodies := map[uint32]*Body{}
	for _, fs := range c.user {
		for _, f := range fs {
			if f.OID != 0 && f.Source != "" && (f.Lang == "sql" || f.Lang == "plpgsql") {
				bodies[f.OID] = bc.parse(f.Lang, f.Source)
			}
		}
	}
	c.bodyRO = make(map[uint32]bool, len(bodies))
	for oid, b := range bodies {
		c.bodyRO[oid] = !b.Dynamic
	}
	for changed := true; changed; {
		changed = false
		for oid, b := range bodies {
			if c.bodyRO[oid] && !c.bodyReads(b) {
				c.bodyRO[oid] = false
				changed = true
			}
		}
	}
}

// bodyReads reports whether every query of b is a read calling only what
// is read-only by the catalog as it stands.
func (c *Catalog) bodyReads(b *Body) bool {
	for _, q := range b.Queries {
		if q.Class != ClassSelect || q.HasFlag(FlagRiskyFunction) || q.HasFlag(FlagSetConfig) || q.HasFlag(FlagCatalogWrite) {
			return false
		}
		if len(c.NotReadOnly(q)) > 0 {
			return false
		}
	}
	return true
}

// NotReadOnly returns the functions a's calls and operators may resolve to
// that are not known to be read-only, schema-qualified where the catalog
// knows the schema. An unqualified name is resolved as the server would
// on any search path: every function of that name, in pg_catalog and in
// every other schema, is a candidate, and each must be read-only. A name
// the catalog does not know is returned as written: it is not known to be
// read-only. Calling any of them is the action sql:call.
func (c *Catalog) NotReadOnly(a *Analysis) []FuncRef {
	var out refSet
	for _, f := range a.Calls {
		c.classifyCall(f, &out)
	}
	for _, op := range a.Operators {
		for _, fn := range c.ops[op.Name] {
			if op.Schema == "" || op.Schema == fn.OpSchema {
				c.classifyResolved(fn, &out)
			}
		}
	}
	for _, f := range a.SyntaxCalls {
		// On a server that reads it as a call, only a function of that
		// name can run; on one that reads it as syntax, nothing does.
		for _, fn := range c.user[f.Name] {
			c.classifyResolved(fn, &out)
		}
	}
	// A function the server may call without a word in the text (a
	// volatile = on a user type) is a possible call of every statement:
	// where such functions exist, every statement needs sql:call for
	// them, the strict side (or the administrator declares them
	// read-only).
	if a.Class.evaluates() {
		for _, fn := range c.implicit {
			out.add(FuncRef{Schema: fn.Schema, Name: fn.Name})
		}
	}
	for _, name := range a.Attributes {
		// (x).f is f(x) for any one-argument function, built-in or not,
		// whatever x's type.
		for _, fn := range c.user[name] {
			if fn.takesOne() {
				c.classifyResolved(fn, &out)
			}
		}
		for _, fn := range c.builtinFuncs[name] {
			if fn.takesOne() {
				c.classifyResolved(fn, &out)
			}
		}
	}
	for _, t := range a.Casts {
		for _, fn := range c.casts[t.Name] {
			c.classifyResolved(fn, &out)
		}
	}
	for _, t := range a.Tables {
		for _, fn := range c.views[t] {
			c.classifyResolved(fn, &out)
		}
	}
	return out.list()
}

// classifyResolved adds fn, a function the catalog named, unless it is
// read-only.
func (c *Catalog) classifyResolved(fn Func, out *refSet) {
	ro := c.readOnlyUser(fn)
	if fn.Schema == "pg_catalog" {
		ro = c.readOnlyBuiltin(fn.Name)
	}
	if !ro {
		out.add(FuncRef{Schema: fn.Schema, Name: fn.Name})
	}
}

func (c *Catalog) classifyCall(f FuncRef, out *refSet) {
	_, isBuiltin := c.builtin[f.Name]
	known := false
	if f.Schema == "" || f.Schema == "pg_catalog" {
		if isBuiltin {
			known = true
			if !c.readOnlyBuiltin(f.Name) {
				out.add(FuncRef{Schema: "pg_catalog", Name: f.Name})
			}
		}
	}
	if f.Schema != "pg_catalog" {
		for _, u := range c.user[f.Name] {
			if f.Schema != "" && u.Schema != f.Schema {
				continue
			}
			known = true
			if !c.readOnlyUser(u) {
				out.add(FuncRef{Schema: u.Schema, Name: u.Name})
			}
		}
	}
	if !known {
		out.add(f)
	}
}
