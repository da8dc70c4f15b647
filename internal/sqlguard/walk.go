package sqlguard

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// walker collects the analysis of one statement. It visits every node of the
// tree: the node types that matter are handled by name, and every other node
// is descended generically through protobuf reflection, so a table or
// function call in an unusual place (a type modifier, a policy qualifier, a
// rule action) is still seen.
type walker struct {
	class     Class // the most consequential class seen so far
	tables    set
	columns   set
	functions set
	flags     set
	acc       accessSet
	calls     refSet
	ops       refSet
	attrs     ordered[string]
	casts     refSet
	syntax    refSet
	settings  set
	prep      preparedEffects
	scope     *scope
	// createSchema is the schema of an enclosing CREATE SCHEMA, where
	// unqualified elements are created.
	createSchema string
}

// scope is one query level: the CTE names it makes visible and the FROM
// items columns can be qualified by.
type scope struct {
	parent *scope
	ctes   []string
	rels   []rel
}

// rel is a FROM item: the name columns qualify it by (alias or relation
// name) and the table it is, "" for a subquery, function or CTE.
type rel struct{ name, table string }

// preparedEffects is what a statement does to the session's prepared
// statements.
type preparedEffects struct {
	executes       []string
	prepares       string
	deallocates    string
	deallocatesAll bool
}

func analyzeStmt(n *pg.Node) Statement {
	w := &walker{}
	w.visit(n, ClassSelect)
	kind := topKind(n)
	if w.class == "" {
		w.class = kind
		if w.class == "" {
			w.class = ClassSelect // MERGE … DO NOTHING only
		}
	}
	// Every statement needs its own action decided, even when it touches no
	// table (SELECT 1) or only tables of another action (COPY (SELECT …)).
	for _, c := range []Class{kind, w.class} {
		if c != "" && !hasAction(&w.acc, c.Action()) {
			w.acc.add(Access{Action: c.Action()})
		}
	}
	return Statement{
		Class:          w.class,
		Tables:         w.tables.sorted(),
		Columns:        w.columns.sorted(),
		Functions:      w.functions.sorted(),
		Flags:          w.flags.sorted(),
		Accesses:       w.acc.list(),
		Calls:          w.calls.list(),
		Operators:      w.ops.list(),
		Attributes:     w.attrs.list(),
		Casts:          w.casts.list(),
		SyntaxCalls:    w.syntax.list(),
		Settings:       w.settings.sorted(),
		Executes:       slices.Clip(w.prep.executes),
		Prepares:       w.prep.prepares,
		Deallocates:    w.prep.deallocates,
		DeallocatesAll: w.prep.deallocatesAll,
	}
}

// topKind is the class of the statement node itself, looking through the
// statements that only wrap another (EXPLAIN, PREPARE, DECLARE CURSOR).
func topKind(n *pg.Node) Class {
	switch x := unwrap(n).(type) {
	case *pg.ExplainStmt:
		return topKind(x.Query)
	case *pg.PrepareStmt:
		return topKind(x.Query)
	case *pg.DeclareCursorStmt:
		return topKind(x.Query)
	case *pg.SelectStmt:
		return ClassSelect
	case *pg.InsertStmt:
		return ClassInsert
	case *pg.UpdateStmt:
		return ClassUpdate
	case *pg.DeleteStmt, *pg.TruncateStmt:
		return ClassDelete
	case *pg.CopyStmt:
		return ClassCopy
	case *pg.VariableSetStmt:
		return varSetClass(x)
	case *pg.MergeStmt:
		return "" // decided by its WHEN clauses
	case nil:
		return ClassUtility
	default:
		c, _ := stmtClass(x)
		return c
	}
}

func (w *walker) raise(c Class) {
	if c.rank() > w.class.rank() {
		w.class = c
	}
}

func (w *walker) flag(f string) { w.flags.add(f) }

var nodeOneof = (&pg.Node{}).ProtoReflect().Descriptor().Oneofs().ByName("node")

// unwrap returns the message inside a Node, or nil. The common node types
// are switched on directly; reflection handles the other two hundred.
func unwrap(n *pg.Node) proto.Message {
	if n == nil {
		return nil
	}
	switch x := n.Node.(type) {
	case nil:
		return nil
	case *pg.Node_ColumnRef:
		return x.ColumnRef
	case *pg.Node_AConst:
		return x.AConst
	case *pg.Node_ResTarget:
		return x.ResTarget
	case *pg.Node_AExpr:
		return x.AExpr
	case *pg.Node_String_:
		return x.String_
	case *pg.Node_RangeVar:
		return x.RangeVar
	case *pg.Node_FuncCall:
		return x.FuncCall
	case *pg.Node_BoolExpr:
		return x.BoolExpr
	case *pg.Node_SelectStmt:
		return x.SelectStmt
	case *pg.Node_JoinExpr:
		return x.JoinExpr
	case *pg.Node_TypeCast:
		return x.TypeCast
	case *pg.Node_List:
		return x.List
	}
	r := n.ProtoReflect()
	fd := r.WhichOneof(nodeOneof)
	if fd == nil {
		return nil
	}
	return r.Get(fd).Message().Interface()
}

// visit analyses m; act is the action of tables referenced generically
// below it (select inside queries, the statement's class inside utility
// statements).
func (w *walker) visit(m proto.Message, act Class) {
	switch x := m.(type) {
	case nil:
	case *pg.Node:
		if x != nil {
			w.visit(unwrap(x), act)
		}
	case *pg.A_Const, *pg.String, *pg.Integer, *pg.Float, *pg.Boolean,
		*pg.BitString, *pg.ParamRef, *pg.A_Star:
		// Leaves.
	case *pg.ColumnRef:
		w.columnRef(x)
	case *pg.RangeVar:
		w.rangeVar(x, act)
	case *pg.FuncCall:
		w.funcCall(x.Funcname)
		w.children(x, act)
	case *pg.A_Expr:
		w.operator(x)
		w.children(x, act)
	case *pg.SubLink:
		w.operatorName(x.OperName)
		w.children(x, act)
	case *pg.SortBy:
		w.operatorName(x.UseOp)
		w.children(x, act)
	case *pg.A_Indirection:
		for _, n := range x.Indirection {
			if f := n.GetString_(); f != nil {
				w.attrs.add(f.Sval)
			}
		}
		w.children(x, act)
	case *pg.TypeCast:
		if tn := x.TypeName; tn != nil && len(tn.Names) > 0 {
			w.casts.add(nameRef(tn.Names))
		}
		w.children(x, act)
	case *pg.JsonScalarExpr, *pg.JsonSerializeExpr, *pg.JsonObjectConstructor, *pg.JsonArrayConstructor,
		*pg.JsonArrayQueryConstructor, *pg.JsonObjectAgg, *pg.JsonArrayAgg, *pg.JsonParseExpr,
		*pg.JsonFuncExpr, *pg.JsonTable, *pg.MergeSupportFunc:
		w.syntax.add(FuncRef{Name: syntaxName(x)})
		w.children(x, act)
	case *pg.ExecuteStmt:
		w.raise(ClassUtility)
		w.flag(FlagExecutePrepared)
		w.prep.executes = append(w.prep.executes, x.Name)
		w.children(x, ClassSelect)
	case *pg.DeallocateStmt:
		w.raise(ClassUtility)
		if x.Isall {
			w.prep.deallocatesAll = true
		} else {
			w.prep.deallocates = x.Name
		}
	case *pg.TransactionStmt:
		w.raise(ClassTransaction)
		if readWriteOption(x.Options) {
			w.flag(FlagReadWrite)
		}
		switch x.Kind {
		case pg.TransactionStmtKind_TRANS_STMT_PREPARE, pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED,
			pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
			// Two-phase commit reaches transactions other sessions
			// prepared (and PostgreSQL allows it in a read-only
			// transaction): a schema-level action, not transaction
			// control.
			w.raise(ClassDDL)
			w.flag(FlagTwoPhase)
			w.flag(FlagEndsTransaction)
		case pg.TransactionStmtKind_TRANS_STMT_COMMIT, pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:
			w.flag(FlagEndsTransaction)
		}
		w.children(x, ClassTransaction)
	case *pg.SelectStmt:
		w.selectStmt(x)
	case *pg.InsertStmt:
		w.insertStmt(x)
	case *pg.UpdateStmt:
		w.updateStmt(x)
	case *pg.DeleteStmt:
		w.deleteStmt(x)
	case *pg.MergeStmt:
		w.mergeStmt(x)
	case *pg.CopyStmt:
		w.copyStmt(x)
	case *pg.ExplainStmt:
		w.flag(FlagExplain)
		for _, o := range x.Options {
			// Any ANALYZE option counts, whatever its value: EXPLAIN
			// (ANALYZE 0) is rare, and a literal must never change the
			// analysis (the cache relies on it).
			if d := o.GetDefElem(); d != nil && d.Defname == "analyze" {
				w.flag(FlagExplainAnalyze)
			}
		}
		w.visit(x.Query, ClassSelect)
	case *pg.PrepareStmt:
		w.flag(FlagPrepare)
		w.prep.prepares = x.Name
		w.visit(x.Query, ClassSelect)
	case *pg.DeclareCursorStmt:
		w.visit(x.Query, ClassSelect)
	case *pg.CreateStmt:
		w.raise(ClassDDL)
		w.createTarget(x.Relation)
		w.children(x, ClassDDL, "relation")
	case *pg.CreateTableAsStmt:
		w.raise(ClassDDL)
		if x.Into != nil {
			w.createTarget(x.Into.Rel)
		}
		w.children(x, ClassDDL, "into")
	case *pg.ViewStmt:
		w.raise(ClassDDL)
		w.createTarget(x.View)
		w.children(x, ClassDDL, "view")
	case *pg.CreateSeqStmt:
		w.raise(ClassDDL)
		w.createTarget(x.Sequence)
		w.children(x, ClassDDL, "sequence")
	case *pg.CreateSchemaStmt:
		w.raise(ClassDDL)
		outer := w.createSchema
		w.createSchema = x.Schemaname
		w.children(x, ClassDDL)
		w.createSchema = outer
	case *pg.TruncateStmt:
		// TRUNCATE empties tables: a DELETE without WHERE, as PostgreSQL's
		// log_statement=mod counts it.
		w.raise(ClassDelete)
		w.flag(FlagTruncate)
		w.flag(FlagNoWhere)
		w.children(x, ClassDelete)
	case *pg.DropStmt:
		w.raise(ClassDDL)
		w.flag(FlagDrop)
		w.dropObjects(x)
		w.children(x, ClassDDL)
	case *pg.AlterTableStmt:
		w.raise(ClassDDL)
		for _, c := range x.Cmds {
			if c := c.GetAlterTableCmd(); c != nil {
				switch c.Subtype {
				case pg.AlterTableType_AT_DropColumn, pg.AlterTableType_AT_DropConstraint:
					w.flag(FlagAlterDrop)
					w.flag(FlagDrop)
				}
			}
		}
		w.children(x, ClassDDL)
	case *pg.GrantStmt:
		w.raise(ClassDCL)
		w.flag(grantFlag(x.IsGrant))
		w.children(x, ClassDCL)
	case *pg.GrantRoleStmt:
		w.raise(ClassDCL)
		w.flag(grantFlag(x.IsGrant))
		w.children(x, ClassDCL)
	case *pg.CreateFunctionStmt:
		w.raise(ClassDDL)
		w.flag(FlagCreateFunction)
		w.children(x, ClassDDL)
	case *pg.CreateTrigStmt:
		w.raise(ClassDDL)
		w.funcCall(x.Funcname)
		w.children(x, ClassDDL)
	case *pg.CreateEventTrigStmt:
		w.raise(ClassDDL)
		w.funcCall(x.Funcname)
		w.children(x, ClassDDL)
	case *pg.VariableSetStmt:
		c := varSetClass(x)
		w.raise(c)
		if c == ClassTransaction {
			// SET TRANSACTION … / SET SESSION CHARACTERISTICS AS TRANSACTION …
			if readWriteOption(x.Args) {
				w.flag(FlagReadWrite)
			}
		} else {
			w.setting(x)
		}
		w.children(x, c)
	case *pg.DiscardStmt:
		w.raise(ClassUtility)
		if x.Target == pg.DiscardMode_DISCARD_ALL {
			// DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT,
			// RESET ALL and DEALLOCATE ALL (PostgreSQL docs, sql-discard):
			// it undoes a SET ROLE and drops every prepared statement.
			w.flag(FlagSetRole)
			w.prep.deallocatesAll = true
			w.settings.add("all")
		}
	default:
		c, ok := stmtClass(m)
		if ok {
			w.raise(c)
			act = c
			if f := stmtFlag(m); f != "" {
				w.flag(f)
			}
		}
		w.children(m, act)
	}
}

// varSetClass is transaction for SET TRANSACTION … and SET SESSION
// CHARACTERISTICS AS TRANSACTION …, set for other SET and RESET.
func varSetClass(s *pg.VariableSetStmt) Class {
	switch s.Name {
	case "TRANSACTION", "TRANSACTION SNAPSHOT", "SESSION CHARACTERISTICS":
		return ClassTransaction
	}
	return ClassSet
}

// LexicalSettings change how the server reads SQL text: the gateway can
// analyse a statement only if it reads it the same way (docs/security.md).
var LexicalSettings = []string{"client_encoding", "standard_conforming_strings", "backslash_quote"}

// setting records what a SET or RESET changes. Setting names are
// case-insensitive in PostgreSQL (SET "DateStyle" and SET datestyle are
// one), so they are lower-cased; the analysis never looks at the value,
// which is a literal the cache may share between statements.
func (w *walker) setting(x *pg.VariableSetStmt) {
	name := strings.ToLower(x.Name)
	if x.Kind == pg.VariableSetKind_VAR_RESET_ALL {
		name = "all"
	}
	w.settings.add(name)
	switch name {
	case "role", "session_authorization":
		w.flag(FlagSetRole)
	case "search_path":
		w.flag(FlagSearchPath)
	case "transaction_read_only", "default_transaction_read_only":
		w.flag(FlagReadWrite)
	}
	if slices.Contains(LexicalSettings, name) {
		w.flag(FlagLexical)
	}
}

// readWriteOption reports whether transaction options ask for READ WRITE:
// the grammar writes READ WRITE as transaction_read_only = 0, from keywords
// (never from a literal, so the cache cannot share it with READ ONLY).
func readWriteOption(opts []*pg.Node) bool {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || d.Defname != "transaction_read_only" {
			continue
		}
		c := d.Arg.GetAConst()
		if c == nil || c.GetIval().GetIval() == 0 {
			return true
		}
	}
	return false
}

func grantFlag(isGrant bool) string {
	if isGrant {
		return FlagGrant
	}
	return FlagRevoke
}

// children visits every message field of m except those named in skip, in
// field-number order: protoreflect's Range order is deliberately unstable,
// and the order of Accesses must not vary between runs.
func (w *walker) children(m proto.Message, act Class, skip ...protoreflect.Name) {
	r := m.ProtoReflect()
	fds := r.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if fd.Message() == nil || fd.IsMap() || !r.Has(fd) || slices.Contains(skip, fd.Name()) {
			continue
		}
		if fd.IsList() {
			l := r.Get(fd).List()
			for j := range l.Len() {
				w.visit(l.Get(j).Message().Interface(), act)
			}
			continue
		}
		w.visit(r.Get(fd).Message().Interface(), act)
	}
}

func (w *walker) visitAll(ns []*pg.Node, act Class) {
	for _, n := range ns {
		w.visit(n, act)
	}
}

// stmtClass classifies the statements not handled in visit. The split
// between DDL and the rest follows PostgreSQL's GetCommandLogLevel
// (src/backend/tcop/utility.c, what log_statement=ddl logs); statements
// about roles and privileges are DCL. A statement type this list does not
// know is DDL: the conservative side.
func stmtClass(m proto.Message) (Class, bool) {
	switch m.(type) {
	case *pg.TransactionStmt, *pg.ConstraintsSetStmt:
		return ClassTransaction, true
	case *pg.GrantStmt, *pg.GrantRoleStmt, *pg.AlterDefaultPrivilegesStmt,
		*pg.CreateRoleStmt, *pg.AlterRoleStmt, *pg.AlterRoleSetStmt, *pg.DropRoleStmt,
		*pg.CreatePolicyStmt, *pg.AlterPolicyStmt, *pg.AlterOwnerStmt,
		*pg.DropOwnedStmt, *pg.ReassignOwnedStmt, *pg.SecLabelStmt:
		return ClassDCL, true
	case *pg.DoStmt:
		// DO runs code the client wrote, which the analysis cannot see into
		// (PostgreSQL logs it as ALL): class it with the statements that
		// change the schema rather than with SET and SHOW.
		return ClassDDL, true
	case *pg.VariableSetStmt:
		return varSetClass(m.(*pg.VariableSetStmt)), true
	case *pg.VariableShowStmt, *pg.ExecuteStmt, *pg.DeallocateStmt, *pg.DiscardStmt,
		*pg.ClosePortalStmt, *pg.FetchStmt:
		return ClassUtility, true
	case *pg.CallStmt:
		return ClassCall, true
	case *pg.ListenStmt, *pg.UnlistenStmt:
		return ClassListen, true
	case *pg.NotifyStmt:
		return ClassNotify, true
	case *pg.LockStmt:
		return ClassLock, true
	case *pg.VacuumStmt, *pg.ReindexStmt, *pg.ClusterStmt, *pg.CheckPointStmt:
		return ClassMaintenance, true
	case *pg.LoadStmt:
		return ClassLoad, true
	case *pg.RawStmt, *pg.ReturnStmt, *pg.PLAssignStmt, *pg.SetOperationStmt,
		*pg.ExplainStmt, *pg.PrepareStmt, *pg.DeclareCursorStmt:
		return "", false // wrappers and parts of other statements
	}
	if strings.HasSuffix(string(m.ProtoReflect().Descriptor().Name()), "Stmt") {
		return ClassDDL, true
	}
	return "", false
}

// stmtFlag is the flag a generically handled statement type always carries.
func stmtFlag(m proto.Message) string {
	switch m.(type) {
	case *pg.DoStmt:
		return FlagDoBlock
	case *pg.CallStmt:
		return FlagCall
	case *pg.ExecuteStmt:
		return FlagExecutePrepared
	case *pg.ListenStmt, *pg.UnlistenStmt:
		return FlagListen
	case *pg.NotifyStmt:
		return FlagNotify
	case *pg.VacuumStmt:
		return FlagVacuum
	case *pg.LockStmt:
		return FlagLock
	case *pg.AlterSystemStmt:
		return FlagAlterSystem
	case *pg.DropRoleStmt, *pg.DropOwnedStmt, *pg.DropdbStmt, *pg.DropTableSpaceStmt,
		*pg.DropSubscriptionStmt, *pg.DropUserMappingStmt:
		return FlagDrop
	}
	return ""
}

// --- queries ---------------------------------------------------------------

func (w *walker) push() *scope {
	w.scope = &scope{parent: w.scope}
	return w.scope
}

func (w *walker) pop() { w.scope = w.scope.parent }

func (w *walker) isCTE(name string) bool {
	for s := w.scope; s != nil; s = s.parent {
		if slices.Contains(s.ctes, name) {
			return true
		}
	}
	return false
}

// withClause makes the CTE names visible in the current scope and visits
// their queries. A non-recursive CTE sees only the CTEs before it: in
// WITH a AS (SELECT * FROM a) … the inner a is a table.
func (w *walker) withClause(wc *pg.WithClause) {
	if wc == nil {
		return
	}
	if wc.Recursive {
		for _, c := range wc.Ctes {
			w.scope.ctes = append(w.scope.ctes, c.GetCommonTableExpr().GetCtename())
		}
	}
	for _, c := range wc.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			w.visit(c, ClassSelect)
			continue
		}
		w.visit(cte.Ctequery, ClassSelect)
		w.children(cte, ClassSelect, "ctequery")
		if !wc.Recursive {
			w.scope.ctes = append(w.scope.ctes, cte.Ctename)
		}
	}
}

func (w *walker) selectStmt(s *pg.SelectStmt) {
	w.raise(ClassSelect)
	if len(s.LockingClause) > 0 {
		// Row locks block every writer of those rows: a lock, not a
		// plain read.
		w.flag(FlagRowLock)
		w.acc.add(Access{Action: ClassLock.Action()})
	}
	sc := w.push()
	defer w.pop()
	w.withClause(s.WithClause)
	for _, f := range s.FromClause {
		w.collectRels(sc, f)
	}
	if s.IntoClause != nil {
		// SELECT … INTO creates a table.
		w.raise(ClassDDL)
		w.createTarget(s.IntoClause.Rel)
	}
	w.children(s, ClassSelect, "with_clause", "into_clause")
}

// collectRels records the FROM items of one query level for qualifying
// columns; the items themselves are visited with the rest of the query.
func (w *walker) collectRels(sc *scope, n *pg.Node) {
	switch x := unwrap(n).(type) {
	case *pg.RangeVar:
		name := x.Relname
		if x.Alias != nil {
			name = x.Alias.Aliasname
		}
		table := ""
		if !w.isCTERef(x) {
			table = qualify(x, false)
		}
		sc.rels = append(sc.rels, rel{name: name, table: table})
	case *pg.JoinExpr:
		w.collectRels(sc, x.Larg)
		w.collectRels(sc, x.Rarg)
		if x.Alias != nil {
			sc.rels = append(sc.rels, rel{name: x.Alias.Aliasname})
		}
	case *pg.RangeTableSample:
		w.collectRels(sc, x.Relation)
	case *pg.RangeSubselect:
		if x.Alias != nil {
			sc.rels = append(sc.rels, rel{name: x.Alias.Aliasname})
		}
	case *pg.RangeFunction:
		if x.Alias != nil {
			sc.rels = append(sc.rels, rel{name: x.Alias.Aliasname})
		}
	}
}

func (w *walker) isCTERef(r *pg.RangeVar) bool {
	return r.Schemaname == "" && r.Catalogname == "" && w.isCTE(r.Relname)
}

// target records the relation an INSERT, UPDATE, DELETE, MERGE or COPY
// writes or reads. Target names never refer to CTEs.
func (w *walker) target(sc *scope, r *pg.RangeVar, act Class) string {
	if r == nil {
		return ""
	}
	t := qualify(r, false)
	w.tables.add(t)
	if act != "" {
		w.acc.add(Access{Action: act.Action(), Table: t})
	}
	name := r.Relname
	if r.Alias != nil {
		name = r.Alias.Aliasname
	}
	sc.rels = append(sc.rels, rel{name: name, table: t})
	return t
}

// catalogWrite flags a write into a system catalog or view: for a
// superuser, UPDATE pg_settings runs set_config through the view's rules,
// and UPDATE pg_class or pg_proc rewrites the schema (renames a table, makes
// a volatile function look immutable). Such a write is DDL.
func (w *walker) catalogWrite(t string) {
	if strings.HasPrefix(t, "pg_catalog.") || strings.HasPrefix(t, "information_schema.") {
		w.flag(FlagCatalogWrite)
		w.raise(ClassDDL)
	}
}

func (w *walker) targetColumns(t string, targets []*pg.Node) {
	for _, n := range targets {
		if rt := n.GetResTarget(); rt != nil && rt.Name != "" {
			w.columns.add(column(t, rt.Name))
		}
	}
}

// returning records that RETURNING reads the target's rows back.
func (w *walker) returning(t string, list []*pg.Node) {
	if len(list) > 0 && t != "" {
		w.acc.add(Access{Action: ClassSelect.Action(), Table: t})
	}
}

func (w *walker) insertStmt(s *pg.InsertStmt) {
	w.raise(ClassInsert)
	sc := w.push()
	defer w.pop()
	w.withClause(s.WithClause)
	// The SELECT cannot see the target, so visit it before the target joins
	// the scope.
	w.visit(s.SelectStmt, ClassSelect)
	t := w.target(sc, s.Relation, ClassInsert)
	w.catalogWrite(t)
	w.targetColumns(t, s.Cols)
	if len(s.Cols) == 0 {
		w.columns.add(column(t, "*")) // every column, by position or default
	}
	if oc := s.OnConflictClause; oc != nil {
		if oc.Action == pg.OnConflictAction_ONCONFLICT_UPDATE {
			// An upsert updates existing rows.
			w.acc.add(Access{Action: ClassUpdate.Action(), Table: t})
			w.targetColumns(t, oc.TargetList)
		}
		sc.rels = append(sc.rels, rel{name: "excluded", table: t})
		w.children(oc, ClassSelect)
	}
	w.returning(t, s.ReturningList)
	w.children(s, ClassSelect, "with_clause", "select_stmt", "relation", "cols", "on_conflict_clause")
}

func (w *walker) updateStmt(s *pg.UpdateStmt) {
	w.raise(ClassUpdate)
	sc := w.push()
	defer w.pop()
	w.withClause(s.WithClause)
	t := w.target(sc, s.Relation, ClassUpdate)
	w.catalogWrite(t)
	for _, f := range s.FromClause {
		w.collectRels(sc, f)
	}
	w.targetColumns(t, s.TargetList)
	w.noWhere(s.WhereClause)
	w.returning(t, s.ReturningList)
	w.children(s, ClassSelect, "with_clause", "relation")
}

func (w *walker) deleteStmt(s *pg.DeleteStmt) {
	w.raise(ClassDelete)
	sc := w.push()
	defer w.pop()
	w.withClause(s.WithClause)
	t := w.target(sc, s.Relation, ClassDelete)
	w.catalogWrite(t)
	for _, f := range s.UsingClause {
		w.collectRels(sc, f)
	}
	w.noWhere(s.WhereClause)
	w.returning(t, s.ReturningList)
	w.children(s, ClassSelect, "with_clause", "relation")
}

func (w *walker) mergeStmt(s *pg.MergeStmt) {
	sc := w.push()
	defer w.pop()
	w.withClause(s.WithClause)
	t := w.target(sc, s.Relation, "")
	w.catalogWrite(t)
	w.collectRels(sc, s.SourceRelation)
	for _, n := range s.MergeWhenClauses {
		c := n.GetMergeWhenClause()
		if c == nil {
			continue
		}
		var act Class
		switch c.CommandType {
		case pg.CmdType_CMD_INSERT:
			act = ClassInsert
		case pg.CmdType_CMD_UPDATE:
			act = ClassUpdate
		case pg.CmdType_CMD_DELETE:
			act = ClassDelete
		}
		if act != "" {
			w.raise(act)
			w.acc.add(Access{Action: act.Action(), Table: t})
		}
		w.targetColumns(t, c.TargetList)
	}
	w.returning(t, s.ReturningList)
	w.children(s, ClassSelect, "with_clause", "relation")
}

func (w *walker) copyStmt(s *pg.CopyStmt) {
	w.raise(ClassCopy)
	sc := w.push()
	defer w.pop()
	switch {
	case s.IsProgram:
		w.flag(FlagCopyProgram)
	case s.Filename != "" && s.IsFrom:
		w.flag(FlagCopyFromFile)
	case s.Filename != "":
		w.flag(FlagCopyToFile)
	}
	if s.IsFrom && s.Filename == "" && !s.IsProgram {
		w.flag(FlagCopyFromStdin)
	}
	if s.Relation != nil {
		// COPY needs the privilege its direction implies, as in PostgreSQL:
		// INSERT to copy in, SELECT to copy out.
		t := w.target(sc, s.Relation, ClassCopy)
		if s.IsFrom {
			w.catalogWrite(t)
		}
		data := ClassSelect
		if s.IsFrom {
			data = ClassInsert
		}
		w.acc.add(Access{Action: data.Action(), Table: t})
		for _, a := range s.Attlist {
			if name := a.GetString_().GetSval(); name != "" {
				w.columns.add(column(t, name))
			}
		}
		if len(s.Attlist) == 0 {
			w.columns.add(column(t, "*"))
		}
	}
	w.children(s, ClassSelect, "relation", "attlist")
}

// noWhere flags an UPDATE or DELETE whose WHERE cannot single out rows.
func (w *walker) noWhere(where *pg.Node) {
	if where == nil || unrestricted(where) {
		w.flag(FlagNoWhere)
	}
}

// unrestricted reports whether a WHERE clause may match every row: it reads
// no column of the row (WHERE true, WHERE 1=1, WHERE $1), or it is an OR with
// such an arm, or an AND of such clauses. It never looks at literal values,
// so WHERE 1=0 counts too: the analysis must not depend on literals (the
// cache relies on it), and a DELETE that matches nothing loses nothing by
// being held for review.
func unrestricted(n *pg.Node) bool {
	if !readsRow(n) {
		return true
	}
	b := n.GetBoolExpr()
	if b == nil {
		return false
	}
	switch b.Boolop {
	case pg.BoolExprType_OR_EXPR:
		return slices.ContainsFunc(b.Args, unrestricted)
	case pg.BoolExprType_AND_EXPR:
		for _, a := range b.Args {
			if !unrestricted(a) {
				return false
			}
		}
		return true
	}
	return false
}

// readsRow reports whether m mentions a column or a cursor position.
func readsRow(m proto.Message) bool {
	switch x := m.(type) {
	case *pg.Node:
		return readsRow(unwrap(x))
	case *pg.ColumnRef, *pg.CurrentOfExpr:
		return true
	case nil, *pg.A_Const, *pg.String, *pg.Integer, *pg.Float, *pg.Boolean, *pg.ParamRef:
		return false
	}
	found := false
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && !found; i++ {
				found = readsRow(l.Get(i).Message().Interface())
			}
		} else {
			found = readsRow(v.Message().Interface())
		}
		return !found
	})
	return found
}

// --- names -------------------------------------------------------------------

// rangeVar records a table referenced below a statement with action act.
func (w *walker) rangeVar(r *pg.RangeVar, act Class) {
	if w.isCTERef(r) {
		return
	}
	t := qualify(r, false)
	w.tables.add(t)
	w.acc.add(Access{Action: act.Action(), Table: t})
	if act == ClassLock {
		// A lock on a system catalog stalls everything that reads it
		// (the gateway's own function catalog included).
		w.catalogWrite(t)
	}
}

// createTarget records a relation a statement creates.
func (w *walker) createTarget(r *pg.RangeVar) {
	if r == nil {
		return
	}
	if r.Schemaname == "" && w.createSchema != "" {
		r = &pg.RangeVar{Schemaname: w.createSchema, Relname: r.Relname}
	}
	t := qualify(r, true)
	w.tables.add(t)
	w.acc.add(Access{Action: ClassDDL.Action(), Table: t})
}

// qualify names a relation as schema.table. The search_path is not known,
// so an unqualified name is taken as public, except that a reference to a
// name starting with pg_ is taken as pg_catalog, which PostgreSQL searches
// first (docs: ddl-schemas-path), and a new TEMP relation is in pg_temp.
// The search_path flag marks statements that change the path.
func qualify(r *pg.RangeVar, creating bool) string {
	schema := r.Schemaname
	switch {
	case schema != "":
	case r.Relpersistence == "t":
		schema = "pg_temp"
	case !creating && strings.HasPrefix(r.Relname, "pg_"):
		schema = "pg_catalog"
	default:
		schema = "public"
	}
	return quoteIdent(schema) + "." + quoteIdent(r.Relname)
}

// dropObjects records the relations a DROP names.
func (w *walker) dropObjects(s *pg.DropStmt) {
	switch s.RemoveType {
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW,
		pg.ObjectType_OBJECT_FOREIGN_TABLE, pg.ObjectType_OBJECT_SEQUENCE, pg.ObjectType_OBJECT_INDEX:
	default:
		return
	}
	for _, o := range s.Objects {
		var parts []string
		for _, it := range o.GetList().GetItems() {
			parts = append(parts, it.GetString_().GetSval())
		}
		r := &pg.RangeVar{}
		switch len(parts) {
		case 1:
			r.Relname = parts[0]
		case 2, 3:
			r.Schemaname, r.Relname = parts[len(parts)-2], parts[len(parts)-1]
		default:
			continue
		}
		t := qualify(r, false)
		w.tables.add(t)
		w.acc.add(Access{Action: ClassDDL.Action(), Table: t})
	}
}

// funcCall records a called function and flags risky ones. Functions are
// matched by their unqualified name, so myschema.pg_read_file is flagged
// too: the conservative side.
func (w *walker) funcCall(name []*pg.Node) {
	parts := make([]string, 0, len(name))
	for _, n := range name {
		parts = append(parts, quoteIdent(n.GetString_().GetSval()))
	}
	if len(parts) == 0 {
		return
	}
	w.functions.add(strings.Join(parts, "."))
	w.calls.add(nameRef(name))
	last := name[len(name)-1].GetString_().GetSval()
	if isRisky(last) {
		w.flag(FlagRiskyFunction)
	}
	switch last {
	case "set_config":
		w.flag(FlagSetConfig)
	case "pg_notify":
		w.flag(FlagNotify)
	}
}

// syntaxName is the function an older server calls for syntax that
// PostgreSQL 16 and 17 added (SQL/JSON constructors and functions,
// MERGE_ACTION()).
func syntaxName(m proto.Message) string {
	switch x := m.(type) {
	case *pg.JsonScalarExpr:
		return "json_scalar"
	case *pg.JsonSerializeExpr:
		return "json_serialize"
	case *pg.JsonObjectConstructor:
		return "json_object"
	case *pg.JsonArrayConstructor, *pg.JsonArrayQueryConstructor:
		return "json_array"
	case *pg.JsonObjectAgg:
		return "json_objectagg"
	case *pg.JsonArrayAgg:
		return "json_arrayagg"
	case *pg.JsonParseExpr:
		return "json"
	case *pg.JsonTable:
		return "json_table"
	case *pg.JsonFuncExpr:
		switch x.Op {
		case pg.JsonExprOp_JSON_EXISTS_OP:
			return "json_exists"
		case pg.JsonExprOp_JSON_QUERY_OP:
			return "json_query"
		}
		return "json_value"
	case *pg.MergeSupportFunc:
		return "merge_action"
	}
	return ""
}

// nameRef is a [catalog.][schema.]name list as a FuncRef.
func nameRef(name []*pg.Node) FuncRef {
	var f FuncRef
	if n := len(name); n > 0 {
		f.Name = name[n-1].GetString_().GetSval()
		if n > 1 {
			f.Schema = name[n-2].GetString_().GetSval()
		}
	}
	return f
}

// operator records the operators an expression uses. BETWEEN is written
// with its keyword but compares with >= and <=; IN with = (or <>).
func (w *walker) operator(x *pg.A_Expr) {
	switch x.Kind {
	case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		w.ops.add(FuncRef{Name: ">="})
		w.ops.add(FuncRef{Name: "<="})
		return
	}
	w.operatorName(x.Name)
}

func (w *walker) operatorName(name []*pg.Node) {
	if len(name) > 0 {
		w.ops.add(nameRef(name))
	}
}

// columnRef records a column, qualified by its table where the FROM items
// of the enclosing query levels say which.
func (w *walker) columnRef(c *pg.ColumnRef) {
	var quals []string
	col, star := "", false
	for i, f := range c.Fields {
		switch {
		case f.GetAStar() != nil:
			star = true
		case i == len(c.Fields)-1:
			col = f.GetString_().GetSval()
		default:
			quals = append(quals, f.GetString_().GetSval())
		}
	}
	if star {
		col = "*"
	} else if len(quals) > 0 {
		w.attrs.add(col) // t.f may be f(t)
	}
	table := ""
	switch len(quals) {
	case 0:
		table = w.soleTable()
	case 1:
		table = w.relTable(quals[0])
	default: // [catalog.]schema.table
		n := len(quals)
		table = quoteIdent(quals[n-2]) + "." + quoteIdent(quals[n-1])
	}
	w.columns.add(column(table, col))
}

// soleTable is the table an unqualified column belongs to when the
// innermost query level with FROM items has exactly one, and it is a table.
func (w *walker) soleTable() string {
	for s := w.scope; s != nil; s = s.parent {
		switch len(s.rels) {
		case 0:
			continue
		case 1:
			return s.rels[0].table
		}
		return ""
	}
	return ""
}

func (w *walker) relTable(name string) string {
	for s := w.scope; s != nil; s = s.parent {
		for i := len(s.rels) - 1; i >= 0; i-- {
			if s.rels[i].name == name {
				return s.rels[i].table
			}
		}
	}
	return ""
}

func column(table, col string) string {
	if col != "*" {
		col = quoteIdent(col)
	}
	if table == "" {
		return col
	}
	return table + "." + col
}

// quoteIdent double-quotes a name unless it is a plain lower-case
// identifier, so that schema.table.column splits only one way.
func quoteIdent(s string) string {
	plain := s != ""
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '$')
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
