package sqlguard

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Class is the kind of a statement as policy sees it. Its action name is
// "sql:" + the class.
type Class string

const (
	ClassSelect      Class = "select"
	ClassInsert      Class = "insert"
	ClassUpdate      Class = "update"
	ClassDelete      Class = "delete" // also TRUNCATE, as PostgreSQL's log_statement=mod does
	ClassDDL         Class = "ddl"
	ClassDCL         Class = "dcl" // GRANT, REVOKE, roles, ownership, row security policies
	ClassCopy        Class = "copy"
	ClassTransaction Class = "transaction"
	ClassUtility     Class = "utility"     // SHOW, EXECUTE, DEALLOCATE, FETCH, CLOSE, DISCARD, empty
	ClassSet         Class = "set"         // SET and RESET of run-time settings (Statement.Settings names them)
	ClassListen      Class = "listen"      // LISTEN, UNLISTEN
	ClassNotify      Class = "notify"      // NOTIFY
	ClassLock        Class = "lock"        // LOCK TABLE
	ClassCall        Class = "call"        // CALL; also the action of calling a function not known to be read-only
	ClassMaintenance Class = "maintenance" // VACUUM, ANALYZE, REINDEX, CLUSTER, CHECKPOINT
	ClassLoad        Class = "load"        // LOAD: loads a shared library into the server process
	ClassUnparsed    Class = "unparsed"    // pg_query rejected the text
)

// Action is the policy action for statements of class c, e.g. "sql:select".
func (c Class) Action() string {
	if a, ok := actions[c]; ok {
		return a
	}
	return "sql:" + string(c)
}

var actions = map[Class]string{
	ClassSelect: "sql:select", ClassInsert: "sql:insert", ClassUpdate: "sql:update",
	ClassDelete: "sql:delete", ClassDDL: "sql:ddl", ClassDCL: "sql:dcl", ClassCopy: "sql:copy",
	ClassTransaction: "sql:transaction", ClassUtility: "sql:utility", ClassSet: "sql:set",
	ClassListen: "sql:listen", ClassNotify: "sql:notify", ClassLock: "sql:lock", ClassCall: "sql:call",
	ClassMaintenance: "sql:maintenance", ClassLoad: "sql:load", ClassUnparsed: "sql:unparsed",
}

// rank orders classes by what a statement can change, so that a statement
// hiding a write (a DELETE in a CTE, EXPLAIN ANALYZE UPDATE) and a
// multi-statement query take the class of their most consequential part.
func (c Class) rank() int {
	switch c {
	case ClassTransaction:
		return 1
	case ClassUtility:
		return 2
	case ClassSet:
		return 3
	case ClassListen:
		return 4
	case ClassSelect:
		return 5
	case ClassCopy:
		return 6
	case ClassNotify:
		return 7
	case ClassLock:
		return 8
	case ClassInsert:
		return 9
	case ClassUpdate:
		return 10
	case ClassDelete:
		return 11
	case ClassCall:
		return 12
	case ClassMaintenance:
		return 13
	case ClassDDL:
		return 14
	case ClassLoad:
		return 15
	case ClassDCL:
		return 16
	case ClassUnparsed:
		return 17
	}
	return 0
}

// writes reports whether statements of class c change data, schema or
// privileges (for FlagMixedReadWrite).
func (c Class) writes() bool {
	switch c {
	case ClassInsert, ClassUpdate, ClassDelete, ClassDDL, ClassDCL, ClassCall, ClassMaintenance, ClassLoad, ClassLock, ClassNotify:
		return true
	}
	return false
}

// Flags name risky properties of a statement; policies see them in the
// request context. An Analysis carries them sorted.
const (
	FlagNoWhere         = "no_where"         // UPDATE/DELETE with no WHERE, or one that reads no column (WHERE true, WHERE 1=1 OR …)
	FlagMultiStatement  = "multi_statement"  // more than one statement in one Query
	FlagMixedReadWrite  = "mixed_read_write" // a multi-statement query with both reads and writes
	FlagEmpty           = "empty"            // no statement at all (only spaces, comments or semicolons)
	FlagRiskyFunction   = "risky_function"   // a call to a function in RiskyFunctions
	FlagCopyProgram     = "copy_program"     // COPY … TO/FROM PROGRAM: runs a shell command on the server
	FlagCopyToFile      = "copy_to_file"     // COPY … TO 'server file'
	FlagCopyFromFile    = "copy_from_file"   // COPY … FROM 'server file'
	FlagSetRole         = "set_role"         // SET [LOCAL] ROLE, SET SESSION AUTHORIZATION, RESET of either, DISCARD ALL
	FlagSetConfig       = "set_config"       // a set_config() call
	FlagSearchPath      = "search_path"      // SET/RESET search_path: unqualified names may no longer mean public
	FlagAlterSystem     = "alter_system"     // ALTER SYSTEM
	FlagDrop            = "drop"             // any DROP, including ALTER … DROP COLUMN/CONSTRAINT
	FlagTruncate        = "truncate"         // TRUNCATE
	FlagAlterDrop       = "alter_drop"       // ALTER TABLE … DROP COLUMN/CONSTRAINT
	FlagGrant           = "grant"            // GRANT (privileges or roles, default privileges)
	FlagRevoke          = "revoke"           // REVOKE
	FlagCreateFunction  = "create_function"  // CREATE [OR REPLACE] FUNCTION/PROCEDURE
	FlagDoBlock         = "do_block"         // DO $$…$$: arbitrary procedural code
	FlagCall            = "call"             // CALL of a procedure
	FlagExplain         = "explain"          // EXPLAIN: classified by the explained statement
	FlagExplainAnalyze  = "explain_analyze"  // EXPLAIN ANALYZE: runs the explained statement
	FlagPrepare         = "prepare"          // PREPARE: classified by the prepared statement
	FlagExecutePrepared = "execute_prepared" // EXECUTE name: the class is that of an earlier PREPARE
	FlagListen          = "listen"           // LISTEN/UNLISTEN
	FlagNotify          = "notify"           // NOTIFY or pg_notify()
	FlagVacuum          = "vacuum"           // VACUUM or ANALYZE
	FlagLock            = "lock"             // LOCK TABLE
	FlagReadWrite       = "read_write"       // asks for a read-write transaction, or SETs/RESETs transaction_read_only or default_transaction_read_only
	FlagLexical         = "lexical_setting"  // SETs or RESETs a setting that changes how the server reads SQL text (client_encoding, standard_conforming_strings, backslash_quote)
	FlagComment         = "comment"          // the text has a comment (Normalized keeps a placeholder, not its words)
	FlagEndsTransaction = "ends_transaction" // COMMIT, ROLLBACK, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED: what follows runs in a new transaction
	FlagTwoPhase        = "two_phase"        // PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED: acts on transactions other sessions may wait on
	FlagCatalogWrite    = "catalog_write"    // writes a system catalog or view (pg_catalog.*, information_schema.*): a change to the schema or the server's settings
	FlagRowLock         = "row_lock"         // SELECT … FOR UPDATE/SHARE: takes row locks that block writers (also the action sql:lock)
	FlagCopyFromStdin   = "copy_from_stdin"  // COPY … FROM STDIN: the server reads CopyData until CopyDone, ignoring Sync and Flush
	FlagLongName        = "long_name"        // a non-ASCII (or Unicode-escaped) identifier over 63 bytes, which a database not in UTF-8 truncates differently (ErrLongName)
)

// Access is one (action, table) pair the policy engine must allow. Table is
// schema-qualified; it is empty for a statement that touches no table (SELECT 1,
// BEGIN, SET): a connection-level decision.
type Access struct {
	Action string
	Table  string
}

// Statement is the analysis of one statement of a query string.
type Statement struct {
	Class     Class
	Tables    []string // schema-qualified, sorted
	Columns   []string // "schema.table.column" where resolvable, else "column"; sorted
	Functions []string // called functions as written (schema-qualified if it was), sorted
	Flags     []string // sorted
	Accesses  []Access // deduplicated, in order of appearance

	// Calls are the functions called by name, as written (schema "" when
	// unqualified), deduplicated in order; Operators the operators used.
	// The engine classifies them against the server's catalog: a call of
	// anything not known to be read-only is its own action, sql:call.
	Calls     []FuncRef
	Operators []FuncRef
	// Attributes are the field names of qualified column references and
	// field selections (t.f, (x).f): PostgreSQL calls a one-argument
	// function f(t) when t has no column f (attribute notation), so each
	// is a possible call. Casts are the types of explicit casts, whose
	// user-defined cast functions run.
	Attributes []string
	Casts      []FuncRef
	// SyntaxCalls are SQL constructs the parser (PostgreSQL 17) reads as
	// syntax that an older server reads as a call of a function of the
	// same name: JSON_SCALAR(x) is a call of json_scalar(x) on
	// PostgreSQL 15, which any user may have defined.
	SyntaxCalls []FuncRef
	// Settings are the run-time settings a SET or RESET changes, lower-case
	// (setting names are case-insensitive); "all" for RESET ALL.
	Settings []string
	// Prepared statements: the names this statement runs (EXECUTE, also
	// inside EXPLAIN and CREATE TABLE AS), defines (PREPARE) and removes
	// (DEALLOCATE; DeallocatesAll for DEALLOCATE ALL and DISCARD ALL). SQL
	// names and protocol-level statement names are one namespace.
	Executes       []string
	Prepares       string
	Deallocates    string
	DeallocatesAll bool
}

// FuncRef names a function or operator as a statement wrote it.
type FuncRef struct {
	Schema string // "" when unqualified: the server resolves it on its search_path, pg_catalog first
	Name   string
}

// String renders the reference as schema.name, quoting as table names are.
func (f FuncRef) String() string {
	if f.Schema == "" {
		return quoteIdent(f.Name)
	}
	return quoteIdent(f.Schema) + "." + quoteIdent(f.Name)
}

// HasFlag reports whether the statement carries flag f.
func (s *Statement) HasFlag(f string) bool { return slices.Contains(s.Flags, f) }

// Analysis is what policy needs to know about one query string (one Query
// message or one Parse message). An Analysis returned by Analyze or an
// Analyzer may be shared between goroutines and callers: it is read-only, and
// callers must not modify it or its slices.
type Analysis struct {
	// Class is that of the single statement, or for several statements the
	// most consequential one (see docs/sql-analysis.md for the order).
	Class       Class
	Statements  []Statement
	Tables      []string // union over Statements, sorted
	Columns     []string
	Functions   []string
	Flags       []string
	Accesses    []Access  // union over Statements, deduplicated
	Calls       []FuncRef // union over Statements, deduplicated
	Operators   []FuncRef
	Attributes  []string
	Casts       []FuncRef
	SyntaxCalls []FuncRef
	Settings    []string // union over Statements, sorted
	// Fingerprint is pg_query's fingerprint of Normalized: equal for
	// statements that differ only in literal values, whitespace or the
	// length of constant IN lists. Use it to group recordings, never as a
	// decision key.
	Fingerprint string
	// Normalized is the text with constants replaced by $1, $2, …: the
	// cache key rendered as SQL (whitespace runs collapsed) when CacheKey is
	// sure of the text, else pg_query's normalisation. Statements that share
	// a cache entry share it exactly.
	Normalized string
	// Err is the parse error when Class is ClassUnparsed.
	Err error
}

// HasFlag reports whether any statement (or the query as a whole) carries
// flag f.
func (a *Analysis) HasFlag(f string) bool { return slices.Contains(a.Flags, f) }

// Analyze parses sql with the PostgreSQL parser and classifies it. It never
// returns nil: text pg_query rejects yields ClassUnparsed with Err set. It
// does not cache; Analyzer does.
func Analyze(sql string) *Analysis {
	var buf [keyBuf]byte
	key, ok := CacheKey(sql, buf[:0])
	return analyze(sql, key, ok)
}

// analyze is Analyze given the text's CacheKey.
func analyze(sql string, key []byte, keyOK bool) *Analysis {
	if tooDeep(sql) {
		return unparsed(ErrTooComplex)
	}

	tree, err := pg_query.Parse(sql)
	if err != nil {
		return unparsed(err)
	}
	a := analyzeTree(tree)
	// The normalised text comes from the key when there is one, so that
	// every statement of a cached shape has the same text, and the
	// fingerprint from the normalised text: pg_query's fingerprint keeps
	// some literals of utility statements (COPY's file name, NOTIFY's
	// payload). It re-parses in C, a tenth of the cost of Parse.
	if keyOK {
		a.Normalized = normalizeKey(key)
	} else {
		// pg_query's normalisation keeps comments word for word, and the
		// literals of utility statements (PREPARE, CREATE TABLE AS,
		// DEFAULT, COMMENT, COPY's file name …); either can carry a card
		// number or a key. The recorded text keeps only where each was.
		var had bool
		a.Normalized, had = scrubText(sql)
		if had {
			a.Flags = addSorted(a.Flags, FlagComment)
		}
	}
	a.Fingerprint = fingerprint(a.Normalized)
	if longName(sql) {
		a.Flags = addSorted(a.Flags, FlagLongName)
	}
	return a
}

// scrubText is sql with every constant replaced by a parameter numbered
// after the text's own and every comment emptied, found with PostgreSQL's
// own scanner; it reports whether there were comments. Text the scanner
// rejects (it cannot have parsed) is withheld altogether.
func scrubText(sql string) (string, bool) {
	res, err := pg_query.Scan(sql)
	if err != nil {
		return "/* text withheld */", false
	}
	toks := res.GetTokens()
	next := 1
	for _, t := range toks {
		if t.Token == pg_query.Token_PARAM && int(t.Start)+1 <= int(t.End) && int(t.End) <= len(sql) {
			if n, err := strconv.Atoi(sql[t.Start+1 : t.End]); err == nil && n >= next {
				next = n + 1
			}
		}
	}
	var b strings.Builder
	last, comments := 0, false
	for _, t := range toks {
		var repl string
		switch t.Token {
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST,
			pg_query.Token_ICONST, pg_query.Token_FCONST:
			repl = "$" + strconv.Itoa(next)
			next++
		case pg_query.Token_SQL_COMMENT:
			repl, comments = "--", true
		case pg_query.Token_C_COMMENT:
			repl, comments = "/**/", true
		default:
			continue
		}
		start, end := int(t.Start), int(t.End)
		if start < last || end > len(sql) || start > end {
			return "/* text withheld */", comments // never store what cannot be scrubbed
		}
		b.WriteString(sql[last:start])
		b.WriteString(repl)
		last = end
	}
	b.WriteString(sql[last:])
	return b.String(), comments
}

// addSorted adds v to a sorted, clipped slice, returning a new slice.
func addSorted(s []string, v string) []string {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	out := make([]string, 0, len(s)+1)
	out = append(append(append(out, s[:i]...), v), s[i:]...)
	return slices.Clip(out)
}

// fingerprint is pg_query's fingerprint of normalized text, which for
// queries equals that of the original (it ignores constants and
// parameters alike); where the grammar takes no parameter ($1 in COPY t
// FROM $1) it is the text's XXH3 hash in the same 16-hex-digit form.
func fingerprint(normalized string) string {
	if fp, err := pg_query.Fingerprint(normalized); err == nil {
		return fp
	}
	return fmt.Sprintf("%016x", pg_query.HashXXH3_64([]byte(normalized), 0))
}

func unparsed(err error) *Analysis {
	return &Analysis{
		Class:    ClassUnparsed,
		Accesses: []Access{{Action: ClassUnparsed.Action()}},
		Err:      fmt.Errorf("sqlguard: parse: %w", err),
	}
}

func analyzeTree(tree *pg_query.ParseResult) *Analysis {
	a := &Analysis{}
	var tables, columns, functions, flags, settings set
	var accesses accessSet
	var calls, ops, casts, syntax refSet
	var attrs ordered[string]
	reads, writes := false, false
	for _, raw := range tree.GetStmts() {
		st := analyzeStmt(raw.GetStmt())
		a.Statements = append(a.Statements, st)
		if a.Class == "" || st.Class.rank() > a.Class.rank() {
			a.Class = st.Class
		}
		tables.addAll(st.Tables)
		columns.addAll(st.Columns)
		functions.addAll(st.Functions)
		flags.addAll(st.Flags)
		settings.addAll(st.Settings)
		for _, ac := range st.Accesses {
			accesses.add(ac)
		}
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
		switch {
		case st.Class.writes():
			writes = true
		case st.Class == ClassSelect:
			reads = true
		case st.Class == ClassCopy:
			// COPY … TO reads; COPY … FROM writes.
			for _, ac := range st.Accesses {
				reads = reads || ac.Action == ClassSelect.Action()
				writes = writes || ac.Action == ClassInsert.Action()
			}
		}
	}
	switch n := len(a.Statements); {
	case n == 0:
		// The server answers EmptyQueryResponse; nothing runs.
		a.Class = ClassUtility
		flags.add(FlagEmpty)
		accesses.add(Access{Action: ClassUtility.Action()})
	case n > 1:
		flags.add(FlagMultiStatement)
		if reads && writes {
			flags.add(FlagMixedReadWrite)
		}
	}
	a.Tables = tables.sorted()
	a.Columns = columns.sorted()
	a.Functions = functions.sorted()
	a.Flags = flags.sorted()
	a.Accesses = accesses.list()
	a.Settings = settings.sorted()
	a.Calls, a.Operators = calls.list(), ops.list()
	a.Attributes, a.Casts, a.SyntaxCalls = attrs.list(), casts.list(), syntax.list()
	a.Statements = slices.Clip(a.Statements)
	return a
}

// set is a small string set whose sorted form is clipped, so that a caller
// appending to a shared slice cannot write into another's.
type set map[string]struct{}

func (s *set) add(v string) {
	if *s == nil {
		*s = make(set)
	}
	(*s)[v] = struct{}{}
}

func (s *set) addAll(vs []string) {
	for _, v := range vs {
		s.add(v)
	}
}

func (s set) sorted() []string {
	if len(s) == 0 {
		return nil
	}
	out := make([]string, 0, len(s))
	for v := range s {
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Clip(out)
}

// ordered is a deduplicated list in order of first appearance.
type ordered[T comparable] struct {
	seen map[T]struct{}
	out  []T
}

func (s *ordered[T]) add(v T) {
	if _, ok := s.seen[v]; ok {
		return
	}
	if s.seen == nil {
		s.seen = make(map[T]struct{})
	}
	s.seen[v] = struct{}{}
	s.out = append(s.out, v)
}

func (s *ordered[T]) list() []T { return slices.Clip(s.out) }

type (
	accessSet = ordered[Access]
	refSet    = ordered[FuncRef]
)

// hasAction reports whether s holds an access with action.
func hasAction(s *accessSet, action string) bool {
	for _, a := range s.out {
		if a.Action == action {
			return true
		}
	}
	return false
}
