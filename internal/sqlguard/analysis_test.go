package sqlguard

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// acc builds accesses from "class table" strings ("select public.t",
// "utility" for a connection-level access).
func acc(specs ...string) []Access {
	out := make([]Access, 0, len(specs))
	for _, s := range specs {
		class, table, _ := strings.Cut(s, " ")
		out = append(out, Access{Action: Class(class).Action(), Table: table})
	}
	return out
}

type analyzeTest struct {
	name     string
	sql      string
	class    Class
	flags    []string // exact, sorted
	accesses []Access // exact, in order
	columns  []string // exact when non-nil
}

// analyzeCases is the SQL of analyzeTests, reused by the cache tests.
func analyzeCases() []string {
	var out []string
	for _, tt := range analyzeTests {
		out = append(out, tt.sql)
	}
	return out
}

var analyzeTests = []analyzeTest{
	// Classes.
	{name: "select", sql: "SELECT a, t.b FROM t WHERE c = 1", class: ClassSelect,
		accesses: acc("select public.t"), columns: []string{"public.t.a", "public.t.b", "public.t.c"}},
	{name: "select_constant", sql: "SELECT 1", class: ClassSelect, accesses: acc("select")},
	{name: "values", sql: "VALUES (1), (2)", class: ClassSelect, accesses: acc("select")},
	{name: "table_shorthand", sql: "TABLE t", class: ClassSelect, accesses: acc("select public.t"),
		columns: []string{"public.t.*"}},
	{name: "insert", sql: "INSERT INTO t (a, b) VALUES (1, 'x')", class: ClassInsert,
		accesses: acc("insert public.t"), columns: []string{"public.t.a", "public.t.b"}},
	{name: "update", sql: "UPDATE t SET a = 1 WHERE id = 2", class: ClassUpdate,
		accesses: acc("update public.t"), columns: []string{"public.t.a", "public.t.id"}},
	{name: "delete", sql: "DELETE FROM s.t WHERE id = 2", class: ClassDelete,
		accesses: acc("delete s.t"), columns: []string{"s.t.id"}},
	{name: "merge", sql: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT (id, a) VALUES (s.id, s.a)",
		class: ClassUpdate, accesses: acc("update public.t", "insert public.t", "select public.s")},
	{name: "merge_delete", sql: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
		class: ClassDelete, accesses: acc("delete public.t", "select public.s")},
	{name: "ddl_create_table", sql: "CREATE TABLE x (a int)", class: ClassDDL, accesses: acc("ddl public.x")},
	{name: "ddl_create_index", sql: "CREATE INDEX ON t (a)", class: ClassDDL, accesses: acc("ddl public.t")},
	{name: "ddl_comment", sql: "COMMENT ON TABLE t IS 'x'", class: ClassDDL, accesses: acc("ddl")},
	{name: "ddl_extension", sql: "CREATE EXTENSION dblink", class: ClassDDL, accesses: acc("ddl")},
	{name: "ddl_refresh", sql: "REFRESH MATERIALIZED VIEW mv", class: ClassDDL, accesses: acc("ddl public.mv")},
	{name: "ddl_fk", sql: "ALTER TABLE t ADD FOREIGN KEY (a) REFERENCES u (id)", class: ClassDDL,
		accesses: acc("ddl public.t", "ddl public.u")},
	{name: "dcl_create_role", sql: "CREATE ROLE x LOGIN PASSWORD 'p'", class: ClassDCL, accesses: acc("dcl")},
	{name: "dcl_policy", sql: "CREATE POLICY p ON t USING (EXISTS (SELECT 1 FROM acl))", class: ClassDCL,
		accesses: acc("dcl public.t", "select public.acl")},
	{name: "copy_from_stdin", sql: "COPY t (a, b) FROM STDIN", class: ClassCopy, flags: []string{FlagCopyFromStdin},
		accesses: acc("copy public.t", "insert public.t"), columns: []string{"public.t.a", "public.t.b"}},
	{name: "copy_to_stdout", sql: "COPY t TO STDOUT", class: ClassCopy, accesses: acc("copy public.t", "select public.t")},
	{name: "copy_query", sql: "COPY (SELECT a FROM t JOIN u USING (id)) TO STDOUT", class: ClassCopy,
		accesses: acc("select public.t", "select public.u", "copy")},
	{name: "transaction_begin", sql: "BEGIN", class: ClassTransaction, accesses: acc("transaction")},
	{name: "transaction_commit", sql: "COMMIT", class: ClassTransaction, flags: []string{FlagEndsTransaction}, accesses: acc("transaction")},
	{name: "transaction_savepoint", sql: "SAVEPOINT s", class: ClassTransaction, accesses: acc("transaction")},
	// Two-phase commit acts on transactions other sessions wait on: DDL.
	{name: "transaction_prepared", sql: "PREPARE TRANSACTION 'x'", class: ClassDDL,
		flags: []string{FlagEndsTransaction, FlagTwoPhase}, accesses: acc("transaction", "ddl")},
	{name: "utility_set", sql: "SET work_mem = '64MB'", class: ClassSet, accesses: acc("set")},
	{name: "utility_show", sql: "SHOW work_mem", class: ClassUtility, accesses: acc("utility")},
	{name: "utility_fetch", sql: "FETCH 10 FROM c", class: ClassUtility, accesses: acc("utility")},
	{name: "utility_checkpoint", sql: "CHECKPOINT", class: ClassMaintenance, accesses: acc("maintenance")},
	{name: "utility_reindex", sql: "REINDEX TABLE t", class: ClassMaintenance, accesses: acc("maintenance public.t")},
	{name: "unparsed", sql: "SELECT * FROM", class: ClassUnparsed, accesses: acc("unparsed")},
	{name: "unparsed_garbage", sql: "hello world", class: ClassUnparsed, accesses: acc("unparsed")},
	{name: "unparsed_grammar_check", sql: "CREATE TABLE x (a float(60))", class: ClassUnparsed, accesses: acc("unparsed")},
	{name: "empty", sql: " ; ", class: ClassUtility, flags: []string{FlagEmpty}, accesses: acc("utility")},

	// Flags.
	{name: "no_where_update", sql: "UPDATE t SET a = 1", class: ClassUpdate,
		flags: []string{FlagNoWhere}, accesses: acc("update public.t")},
	{name: "no_where_delete", sql: "DELETE FROM t", class: ClassDelete,
		flags: []string{FlagNoWhere}, accesses: acc("delete public.t")},
	{name: "no_where_true", sql: "DELETE FROM t WHERE true", class: ClassDelete,
		flags: []string{FlagNoWhere}, accesses: acc("delete public.t")},
	{name: "no_where_1_eq_1", sql: "UPDATE t SET a = 1 WHERE 1 = 1", class: ClassUpdate,
		flags: []string{FlagNoWhere}, accesses: acc("update public.t")},
	{name: "no_where_or_constant", sql: "DELETE FROM t WHERE id = 5 OR 'a' = 'a'", class: ClassDelete,
		flags: []string{FlagNoWhere}, accesses: acc("delete public.t")},
	{name: "no_where_param", sql: "DELETE FROM t WHERE $1", class: ClassDelete,
		flags: []string{FlagNoWhere}, accesses: acc("delete public.t")},
	{name: "where_and_constant", sql: "DELETE FROM t WHERE id = 5 AND true", class: ClassDelete,
		accesses: acc("delete public.t")},
	{name: "where_subquery", sql: "DELETE FROM t WHERE id IN (SELECT id FROM u)", class: ClassDelete,
		accesses: acc("delete public.t", "select public.u")},
	{name: "where_current_of", sql: "DELETE FROM t WHERE CURRENT OF c", class: ClassDelete,
		accesses: acc("delete public.t")},
	{name: "multi_statement", sql: "SELECT 1; SELECT 2", class: ClassSelect,
		flags: []string{FlagMultiStatement}, accesses: acc("select")},
	{name: "mixed_read_write", sql: "SELECT * FROM a; DELETE FROM b WHERE id = 1", class: ClassDelete,
		flags: []string{FlagMixedReadWrite, FlagMultiStatement}, accesses: acc("select public.a", "delete public.b")},
	{name: "transaction_block_writes_only", sql: "BEGIN; UPDATE t SET a = 1 WHERE id = 1; COMMIT", class: ClassUpdate,
		flags: []string{FlagEndsTransaction, FlagMultiStatement}, accesses: acc("transaction", "update public.t")},
	{name: "mixed_copy_out_and_write", sql: "COPY t TO STDOUT; INSERT INTO u VALUES (1)", class: ClassInsert,
		flags:    []string{FlagMixedReadWrite, FlagMultiStatement},
		accesses: acc("copy public.t", "select public.t", "insert public.u")},
	{name: "risky_pg_read_file", sql: "SELECT pg_read_file('/etc/passwd')", class: ClassSelect,
		flags: []string{FlagRiskyFunction}, accesses: acc("select")},
	{name: "risky_in_from", sql: "SELECT * FROM pg_ls_dir('.') d", class: ClassSelect,
		flags: []string{FlagRiskyFunction}, accesses: acc("select")},
	{name: "risky_qualified", sql: "SELECT pg_catalog.pg_terminate_backend(1)", class: ClassSelect,
		flags: []string{FlagRiskyFunction}, accesses: acc("select")},
	{name: "risky_prefix", sql: "SELECT dblink_exec('c', 'DROP TABLE t')", class: ClassSelect,
		flags: []string{FlagRiskyFunction}, accesses: acc("select")},
	{name: "risky_lo_import", sql: "SELECT lo_import('/etc/passwd')", class: ClassSelect,
		flags: []string{FlagRiskyFunction}, accesses: acc("select")},
	{name: "risky_query_to_xml", sql: "SELECT query_to_xml('select * from secret', true, true, '')", class: ClassSelect,
		flags: []string{FlagRiskyFunction}, accesses: acc("select")},
	{name: "not_risky_current_setting", sql: "SELECT current_setting('role')", class: ClassSelect,
		accesses: acc("select")},
	{name: "copy_program", sql: "COPY t TO PROGRAM 'gzip > /tmp/x'", class: ClassCopy,
		flags: []string{FlagCopyProgram}, accesses: acc("copy public.t", "select public.t")},
	{name: "copy_from_program", sql: "COPY t FROM PROGRAM 'curl http://x'", class: ClassCopy,
		flags: []string{FlagCopyProgram}, accesses: acc("copy public.t", "insert public.t")},
	{name: "copy_to_file", sql: "COPY t TO '/tmp/x'", class: ClassCopy,
		flags: []string{FlagCopyToFile}, accesses: acc("copy public.t", "select public.t")},
	{name: "copy_from_file", sql: "COPY t FROM '/etc/passwd'", class: ClassCopy,
		flags: []string{FlagCopyFromFile}, accesses: acc("copy public.t", "insert public.t")},
	{name: "set_role", sql: "SET ROLE admin", class: ClassSet, flags: []string{FlagSetRole}, accesses: acc("set")},
	{name: "set_local_role", sql: "SET LOCAL ROLE admin", class: ClassSet, flags: []string{FlagSetRole}, accesses: acc("set")},
	{name: "set_role_string", sql: "SET ROLE 'admin'", class: ClassSet, flags: []string{FlagSetRole}, accesses: acc("set")},
	{name: "reset_role", sql: "RESET ROLE", class: ClassSet, flags: []string{FlagSetRole}, accesses: acc("set")},
	{name: "set_session_authorization", sql: "SET SESSION AUTHORIZATION bob", class: ClassSet,
		flags: []string{FlagSetRole}, accesses: acc("set")},
	{name: "discard_all", sql: "DISCARD ALL", class: ClassUtility, flags: []string{FlagSetRole}, accesses: acc("utility")},
	{name: "set_config", sql: "SELECT set_config('role', 'admin', false)", class: ClassSelect,
		flags: []string{FlagRiskyFunction, FlagSetConfig}, accesses: acc("select")},
	{name: "search_path", sql: "SET search_path = hr, public", class: ClassSet,
		flags: []string{FlagSearchPath}, accesses: acc("set")},
	{name: "set_schema", sql: "SET SCHEMA 'hr'", class: ClassSet, flags: []string{FlagSearchPath}, accesses: acc("set")},
	{name: "alter_system", sql: "ALTER SYSTEM SET work_mem = '1GB'", class: ClassDDL,
		flags: []string{FlagAlterSystem}, accesses: acc("ddl")},
	{name: "drop_table", sql: "DROP TABLE a, s.b CASCADE", class: ClassDDL,
		flags: []string{FlagDrop}, accesses: acc("ddl public.a", "ddl s.b")},
	{name: "drop_function", sql: "DROP FUNCTION f(int)", class: ClassDDL, flags: []string{FlagDrop}, accesses: acc("ddl")},
	{name: "drop_role", sql: "DROP ROLE bob", class: ClassDCL, flags: []string{FlagDrop}, accesses: acc("dcl")},
	{name: "drop_database", sql: "DROP DATABASE prod", class: ClassDDL, flags: []string{FlagDrop}, accesses: acc("ddl")},
	{name: "truncate", sql: "TRUNCATE t, u", class: ClassDelete,
		flags: []string{FlagNoWhere, FlagTruncate}, accesses: acc("delete public.t", "delete public.u")},
	{name: "alter_drop_column", sql: "ALTER TABLE t DROP COLUMN c", class: ClassDDL,
		flags: []string{FlagAlterDrop, FlagDrop}, accesses: acc("ddl public.t")},
	{name: "alter_drop_constraint", sql: "ALTER TABLE t DROP CONSTRAINT c", class: ClassDDL,
		flags: []string{FlagAlterDrop, FlagDrop}, accesses: acc("ddl public.t")},
	{name: "alter_add_column", sql: "ALTER TABLE t ADD COLUMN c int", class: ClassDDL, accesses: acc("ddl public.t")},
	{name: "grant", sql: "GRANT SELECT ON t TO bob", class: ClassDCL, flags: []string{FlagGrant}, accesses: acc("dcl public.t")},
	{name: "revoke", sql: "REVOKE ALL ON t FROM bob", class: ClassDCL, flags: []string{FlagRevoke}, accesses: acc("dcl public.t")},
	{name: "grant_role", sql: "GRANT admin TO bob", class: ClassDCL, flags: []string{FlagGrant}, accesses: acc("dcl")},
	{name: "revoke_role", sql: "REVOKE admin FROM bob", class: ClassDCL, flags: []string{FlagRevoke}, accesses: acc("dcl")},
	{name: "default_privileges", sql: "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob", class: ClassDCL,
		flags: []string{FlagGrant}, accesses: acc("dcl")},
	{name: "create_function", sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", class: ClassDDL,
		flags: []string{FlagCreateFunction}, accesses: acc("ddl")},
	{name: "create_function_atomic_body", sql: "CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM t WHERE id = 1; END",
		class: ClassDDL, flags: []string{FlagCreateFunction}, accesses: acc("delete public.t", "ddl")},
	{name: "create_procedure", sql: "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'", class: ClassDDL,
		flags: []string{FlagCreateFunction}, accesses: acc("ddl")},
	{name: "do_block", sql: "DO $$ BEGIN PERFORM 1; END $$", class: ClassDDL, flags: []string{FlagDoBlock}, accesses: acc("ddl")},
	{name: "call", sql: "CALL p(1)", class: ClassCall, flags: []string{FlagCall}, accesses: acc("call")},
	{name: "explain", sql: "EXPLAIN SELECT * FROM t", class: ClassSelect, flags: []string{FlagExplain},
		accesses: acc("select public.t")},
	{name: "explain_delete_plan_only", sql: "EXPLAIN DELETE FROM t WHERE id = 1", class: ClassDelete,
		flags: []string{FlagExplain}, accesses: acc("delete public.t")},
	{name: "explain_analyze", sql: "EXPLAIN ANALYZE DELETE FROM t", class: ClassDelete,
		flags: []string{FlagExplain, FlagExplainAnalyze, FlagNoWhere}, accesses: acc("delete public.t")},
	{name: "explain_analyze_option", sql: "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE id = 1", class: ClassUpdate,
		flags: []string{FlagExplain, FlagExplainAnalyze}, accesses: acc("update public.t")},
	{name: "explain_analyze_false_still_flagged", sql: "EXPLAIN (ANALYZE false) SELECT 1", class: ClassSelect,
		flags: []string{FlagExplain, FlagExplainAnalyze}, accesses: acc("select")},
	{name: "prepare", sql: "PREPARE p AS DELETE FROM t WHERE id = $1", class: ClassDelete,
		flags: []string{FlagPrepare}, accesses: acc("delete public.t")},
	{name: "execute", sql: "EXECUTE p(1)", class: ClassUtility, flags: []string{FlagExecutePrepared}, accesses: acc("utility")},
	{name: "explain_execute", sql: "EXPLAIN EXECUTE p(1)", class: ClassUtility,
		flags: []string{FlagExecutePrepared, FlagExplain}, accesses: acc("utility")},
	{name: "deallocate", sql: "DEALLOCATE p", class: ClassUtility, accesses: acc("utility")},
	{name: "listen", sql: "LISTEN ch", class: ClassListen, flags: []string{FlagListen}, accesses: acc("listen")},
	{name: "unlisten", sql: "UNLISTEN *", class: ClassListen, flags: []string{FlagListen}, accesses: acc("listen")},
	{name: "notify", sql: "NOTIFY ch, 'x'", class: ClassNotify, flags: []string{FlagNotify}, accesses: acc("notify")},
	{name: "pg_notify", sql: "SELECT pg_notify('ch', 'x')", class: ClassSelect, flags: []string{FlagNotify}, accesses: acc("select")},
	{name: "vacuum", sql: "VACUUM (FULL) t", class: ClassMaintenance, flags: []string{FlagVacuum}, accesses: acc("maintenance public.t")},
	{name: "analyze", sql: "ANALYZE t", class: ClassMaintenance, flags: []string{FlagVacuum}, accesses: acc("maintenance public.t")},
	{name: "vacuum_all", sql: "VACUUM", class: ClassMaintenance, flags: []string{FlagVacuum}, accesses: acc("maintenance")},
	{name: "lock", sql: "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", class: ClassLock,
		flags: []string{FlagLock}, accesses: acc("lock public.t")},

	// Statements hidden in CTEs, subqueries and function arguments.
	{name: "cte_delete", sql: "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", class: ClassDelete,
		flags: []string{FlagNoWhere}, accesses: acc("delete public.t", "select public.t")},
	{name: "cte_update_into_insert", sql: "WITH d AS (UPDATE t SET a = 1 WHERE id = 1 RETURNING *) INSERT INTO log SELECT * FROM d",
		class: ClassUpdate, accesses: acc("update public.t", "select public.t", "insert public.log")},
	{name: "cte_name_not_table", sql: "WITH x AS (SELECT a FROM t) SELECT * FROM x", class: ClassSelect,
		accesses: acc("select public.t")},
	{name: "cte_non_recursive_self_is_table", sql: "WITH a AS (SELECT * FROM a) SELECT * FROM a", class: ClassSelect,
		accesses: acc("select public.a")},
	{name: "cte_recursive", sql: "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
		class: ClassSelect, accesses: acc("select")},
	{name: "cte_earlier_visible", sql: "WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b", class: ClassSelect,
		accesses: acc("select")},
	{name: "cte_later_not_visible", sql: "WITH b AS (SELECT * FROM a), a AS (SELECT 1) SELECT * FROM b", class: ClassSelect,
		accesses: acc("select public.a")},
	{name: "cte_target_is_table", sql: "WITH t AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM t)", class: ClassDelete,
		accesses: acc("delete public.t")},
	{name: "subquery_from", sql: "SELECT * FROM (SELECT a FROM t) s", class: ClassSelect, accesses: acc("select public.t")},
	{name: "subquery_where", sql: "SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE u.c = t.c)", class: ClassSelect,
		accesses: acc("select public.t", "select public.u")},
	{name: "subquery_lateral", sql: "SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.id = t.id) x", class: ClassSelect,
		accesses: acc("select public.t", "select public.u")},
	{name: "function_argument_subquery", sql: "SELECT coalesce((SELECT max(a) FROM secret), 0)", class: ClassSelect,
		accesses: acc("select public.secret")},
	{name: "function_argument_risky", sql: "SELECT * FROM t WHERE a = (SELECT pg_read_file('x'))", class: ClassSelect,
		flags: []string{FlagRiskyFunction}, accesses: acc("select public.t")},
	{name: "insert_select", sql: "INSERT INTO a SELECT * FROM b", class: ClassInsert,
		accesses: acc("select public.b", "insert public.a")},
	{name: "insert_returning", sql: "INSERT INTO t DEFAULT VALUES RETURNING id", class: ClassInsert,
		accesses: acc("insert public.t", "select public.t")},
	{name: "upsert", sql: "INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT (a) DO UPDATE SET b = excluded.b", class: ClassInsert,
		accesses: acc("insert public.t", "update public.t"), columns: []string{"public.t.a", "public.t.b"}},
	{name: "upsert_nothing", sql: "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", class: ClassInsert,
		accesses: acc("insert public.t")},
	{name: "update_from", sql: "UPDATE t SET a = u.a FROM u WHERE t.id = u.id", class: ClassUpdate,
		accesses: acc("update public.t", "select public.u")},
	{name: "delete_using", sql: "DELETE FROM t USING u WHERE t.id = u.id", class: ClassDelete,
		accesses: acc("delete public.t", "select public.u")},
	{name: "create_table_as", sql: "CREATE TABLE x AS SELECT * FROM y", class: ClassDDL,
		accesses: acc("ddl public.x", "select public.y")},
	{name: "create_matview", sql: "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t", class: ClassDDL,
		accesses: acc("ddl public.mv", "select public.t")},
	{name: "create_view", sql: "CREATE VIEW v AS SELECT a FROM secret", class: ClassDDL,
		accesses: acc("ddl public.v", "select public.secret")},
	{name: "select_into", sql: "SELECT a INTO newt FROM t", class: ClassDDL, accesses: acc("ddl public.newt", "select public.t")},
	{name: "create_rule_action", sql: "CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u", class: ClassDDL,
		flags: []string{FlagNoWhere}, accesses: acc("ddl public.t", "delete public.u")},
	{name: "copy_delete_returning", sql: "COPY (DELETE FROM t WHERE id = 1 RETURNING *) TO STDOUT", class: ClassDelete,
		accesses: acc("delete public.t", "select public.t", "copy")},
	{name: "declare_cursor", sql: "DECLARE c CURSOR FOR SELECT * FROM t", class: ClassSelect, accesses: acc("select public.t")},
	{name: "xmltable_subquery", sql: "SELECT * FROM xmltable('/r' PASSING (SELECT x FROM docs) COLUMNS a int)",
		class: ClassSelect, accesses: acc("select public.docs")},

	// Names.
	{name: "catalog_unqualified", sql: "SELECT * FROM pg_shadow", class: ClassSelect,
		accesses: acc("select pg_catalog.pg_shadow")},
	{name: "catalog_create_is_public", sql: "CREATE TABLE pg_x (a int)", class: ClassDDL, accesses: acc("ddl public.pg_x")},
	{name: "temp_table", sql: "CREATE TEMP TABLE tt (a int)", class: ClassDDL, accesses: acc("ddl pg_temp.tt")},
	{name: "create_schema_elements", sql: "CREATE SCHEMA s CREATE TABLE x (a int)", class: ClassDDL, accesses: acc("ddl s.x")},
	{name: "quoted_names", sql: `SELECT "Foo"."Bar" FROM "Foo"`, class: ClassSelect, accesses: acc(`select public."Foo"`),
		columns: []string{`public."Foo"."Bar"`}},
	{name: "dotted_quoted_name", sql: `SELECT * FROM "a.b"`, class: ClassSelect, accesses: acc(`select public."a.b"`)},
	{name: "catalog_qualified", sql: "SELECT s.t.a, db.s.t.b FROM s.t", class: ClassSelect, accesses: acc("select s.t"),
		columns: []string{"s.t.a", "s.t.b"}},
	{name: "ambiguous_column_unqualified", sql: "SELECT a FROM t1, t2 WHERE t1.id = t2.id", class: ClassSelect,
		accesses: acc("select public.t1", "select public.t2"),
		columns:  []string{"a", "public.t1.id", "public.t2.id"}},
	{name: "alias_resolves", sql: "SELECT x.a FROM s.t x JOIN u y ON y.id = x.id", class: ClassSelect,
		accesses: acc("select s.t", "select public.u"),
		columns:  []string{"public.u.id", "s.t.a", "s.t.id"}},
	{name: "correlated_column", sql: "SELECT (SELECT b) FROM t", class: ClassSelect, accesses: acc("select public.t"),
		columns: []string{"public.t.b"}},
	{name: "insert_select_not_target", sql: "INSERT INTO t SELECT a", class: ClassInsert, accesses: acc("insert public.t"),
		columns: []string{"a", "public.t.*"}},
	{name: "copy_all_columns", sql: "COPY t TO STDOUT", class: ClassCopy, accesses: acc("copy public.t", "select public.t"),
		columns: []string{"public.t.*"}},
	{name: "count_star_no_column", sql: "SELECT count(*) FROM t", class: ClassSelect, accesses: acc("select public.t"),
		columns: []string{}},
}

func TestAnalyze(t *testing.T) {
	for _, tt := range analyzeTests {
		t.Run(tt.name, func(t *testing.T) {
			a := Analyze(tt.sql)
			if a.Class != tt.class {
				t.Errorf("class = %q, want %q (err %v)", a.Class, tt.class, a.Err)
			}
			if !slices.Equal(a.Flags, tt.flags) {
				t.Errorf("flags = %q, want %q", a.Flags, tt.flags)
			}
			if !slices.Equal(a.Accesses, tt.accesses) {
				t.Errorf("accesses = %v, want %v", a.Accesses, tt.accesses)
			}
			if tt.columns != nil && !slices.Equal(a.Columns, tt.columns) && len(a.Columns)+len(tt.columns) > 0 {
				t.Errorf("columns = %q, want %q", a.Columns, tt.columns)
			}
			for _, f := range tt.flags {
				if !a.HasFlag(f) {
					t.Errorf("HasFlag(%q) = false", f)
				}
			}
			if (a.Class == ClassUnparsed) != (a.Err != nil) {
				t.Errorf("class %q with err %v", a.Class, a.Err)
			}
			checkConsistent(t, a)
		})
	}
}

// checkConsistent checks the invariants every Analysis keeps.
func checkConsistent(t *testing.T, a *Analysis) {
	t.Helper()
	if len(a.Accesses) == 0 {
		t.Errorf("no accesses: every query needs a decision")
	}
	seen := map[Access]bool{}
	for _, ac := range a.Accesses {
		if seen[ac] {
			t.Errorf("duplicate access %v", ac)
		}
		seen[ac] = true
		if ac.Table != "" && !slices.Contains(a.Tables, ac.Table) {
			t.Errorf("access %v names a table not in Tables %q", ac, a.Tables)
		}
	}
	for _, s := range [][]string{a.Tables, a.Columns, a.Functions, a.Flags} {
		if !slices.IsSorted(s) {
			t.Errorf("not sorted: %q", s)
		}
	}
	for _, st := range a.Statements {
		if st.Class.rank() > a.Class.rank() {
			t.Errorf("statement class %q outranks analysis class %q", st.Class, a.Class)
		}
		if !slices.ContainsFunc(st.Accesses, func(ac Access) bool { return ac.Action == st.Class.Action() }) {
			t.Errorf("statement of class %q has no %s access: %v", st.Class, st.Class.Action(), st.Accesses)
		}
	}
}

func TestStatements(t *testing.T) {
	a := Analyze("BEGIN; INSERT INTO a SELECT * FROM b; SET ROLE x; COMMIT")
	want := []struct {
		class Class
		flags []string
	}{
		{ClassTransaction, nil},
		{ClassInsert, nil},
		{ClassSet, []string{FlagSetRole}},
		{ClassTransaction, []string{FlagEndsTransaction}},
	}
	if len(a.Statements) != len(want) {
		t.Fatalf("got %d statements, want %d", len(a.Statements), len(want))
	}
	for i, w := range want {
		st := a.Statements[i]
		if st.Class != w.class || !slices.Equal(st.Flags, w.flags) {
			t.Errorf("statement %d: class %q flags %q, want %q %q", i, st.Class, st.Flags, w.class, w.flags)
		}
		for _, f := range w.flags {
			if !st.HasFlag(f) {
				t.Errorf("statement %d: HasFlag(%q) = false", i, f)
			}
		}
	}
	if a.Class != ClassInsert {
		t.Errorf("class = %q, want insert", a.Class)
	}
	if !a.HasFlag(FlagMultiStatement) || !a.HasFlag(FlagSetRole) || a.HasFlag(FlagMixedReadWrite) {
		t.Errorf("flags = %q", a.Flags)
	}
	if got := a.Statements[1].Tables; !slices.Equal(got, []string{"public.a", "public.b"}) {
		t.Errorf("statement 1 tables = %q", got)
	}
}

func TestFingerprintAndNormalized(t *testing.T) {
	a := Analyze("SELECT * FROM t WHERE a = 1 AND b = 'x'")
	b := Analyze("SELECT *  FROM t WHERE a = 2 AND b = 'yy'")
	c := Analyze("SELECT * FROM u WHERE a = 1 AND b = 'x'")
	if a.Fingerprint == "" || a.Fingerprint != b.Fingerprint || a.Fingerprint == c.Fingerprint {
		t.Errorf("fingerprints %q %q %q: want a == b != c", a.Fingerprint, b.Fingerprint, c.Fingerprint)
	}
	if want := "SELECT * FROM t WHERE a = $1 AND b = $2"; a.Normalized != want {
		t.Errorf("normalized = %q, want %q", a.Normalized, want)
	}
	if u := Analyze("SELECT FROM WHERE"); u.Fingerprint != "" || u.Normalized != "" {
		t.Errorf("unparsed: fingerprint %q normalized %q, want empty", u.Fingerprint, u.Normalized)
	}
}

func TestQuoteIdent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"orders", "orders"},
		{"_x1$", "_x1$"},
		{"Orders", `"Orders"`},
		{"a.b", `"a.b"`},
		{`a"b`, `"a""b"`},
		{"1a", `"1a"`},
		{"", `""`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := quoteIdent(tt.in); got != tt.want {
				t.Errorf("quoteIdent(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRiskyFunctions(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"pg_read_file", true},
		{"pg_read_binary_file", true},
		{"pg_ls_dir", true},
		{"pg_stat_file", true},
		{"lo_import", true},
		{"lo_export", true},
		{"dblink", true},
		{"dblink_connect_u", true},
		{"pg_terminate_backend", true},
		{"pg_cancel_backend", true},
		{"set_config", true},
		{"pg_reload_conf", true},
		{"pg_rotate_logfile", true},
		{"pg_logical_slot_get_changes", true},
		{"current_setting", false},
		{"lower", false},
		{"pg_sleep", false},
		{"count", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isRisky(tt.name); got != tt.want {
				t.Errorf("isRisky(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// TestSessionEffects checks what statements do to the session that the
// engine must track: prepared statements, settings, read-write requests,
// calls and operators.
func TestSessionEffects(t *testing.T) {
	tests := []struct {
		name, sql      string
		executes       []string
		prepares       string
		deallocates    string
		deallocatesAll bool
		settings       []string
		flags          []string // must be present
		calls, ops     []FuncRef
	}{
		{name: "execute", sql: "EXECUTE s2(1)", executes: []string{"s2"}},
		{name: "explain_analyze_execute", sql: "EXPLAIN ANALYZE EXECUTE S2", executes: []string{"s2"}},
		{name: "ctas_execute", sql: "CREATE TABLE x AS EXECUTE s2", executes: []string{"s2"}},
		{name: "prepare", sql: "PREPARE P1 AS DELETE FROM t WHERE id = $1", prepares: "p1"},
		{name: "prepare_quoted", sql: `PREPARE "P1" AS SELECT 1`, prepares: "P1"},
		{name: "deallocate", sql: "DEALLOCATE PREPARE foo", deallocates: "foo"},
		{name: "deallocate_all", sql: "DEALLOCATE ALL", deallocatesAll: true},
		{name: "discard_all", sql: "DISCARD ALL", deallocatesAll: true, settings: []string{"all"}},
		{name: "set_scs", sql: "SET standard_conforming_strings = off", settings: []string{"standard_conforming_strings"}, flags: []string{FlagLexical}},
		{name: "set_quoted_upper", sql: `SET "STANDARD_CONFORMING_STRINGS" TO 'off'`, settings: []string{"standard_conforming_strings"}, flags: []string{FlagLexical}},
		{name: "set_names", sql: "SET NAMES 'SJIS'", settings: []string{"client_encoding"}, flags: []string{FlagLexical}},
		{name: "reset_encoding", sql: "RESET client_encoding", settings: []string{"client_encoding"}, flags: []string{FlagLexical}},
		{name: "backslash_quote", sql: "SET LOCAL backslash_quote = on", settings: []string{"backslash_quote"}, flags: []string{FlagLexical}},
		{name: "reset_all", sql: "RESET ALL", settings: []string{"all"}},
		{name: "set_log", sql: "SET log_statement = 'none'; SET session_replication_role = replica", settings: []string{"log_statement", "session_replication_role"}},
		{name: "begin_rw", sql: "BEGIN READ WRITE", flags: []string{FlagReadWrite}},
		{name: "start_rw", sql: "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE", flags: []string{FlagReadWrite}},
		{name: "set_tx_rw", sql: "SET TRANSACTION READ WRITE", flags: []string{FlagReadWrite}},
		{name: "commit", sql: "COMMIT AND CHAIN", flags: []string{FlagEndsTransaction}},
		{name: "rollback", sql: "ABORT", flags: []string{FlagEndsTransaction}},
		{name: "two_phase", sql: "COMMIT PREPARED 'x'", flags: []string{FlagTwoPhase, FlagEndsTransaction}},
		{name: "prepare_tx", sql: "PREPARE TRANSACTION 'x'", flags: []string{FlagTwoPhase}},
		{name: "catalog_update", sql: "UPDATE pg_settings SET setting = 'x' WHERE name = 'search_path'", flags: []string{FlagCatalogWrite}},
		{name: "catalog_update_qualified", sql: "UPDATE pg_catalog.pg_proc SET provolatile = 'i' WHERE proname = 'f'", flags: []string{FlagCatalogWrite}},
		{name: "catalog_insert", sql: "INSERT INTO information_schema.sql_features VALUES ('x')", flags: []string{FlagCatalogWrite}},
		{name: "catalog_copy_from", sql: "COPY pg_catalog.pg_class FROM STDIN", flags: []string{FlagCatalogWrite}},
		{name: "session_rw", sql: "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", flags: []string{FlagReadWrite}},
		{name: "set_dtro", sql: "SET default_transaction_read_only = on", settings: []string{"default_transaction_read_only"}, flags: []string{FlagReadWrite}},
		{name: "reset_tro", sql: "RESET transaction_read_only", settings: []string{"transaction_read_only"}, flags: []string{FlagReadWrite}},
		{name: "calls", sql: "SELECT evil_delete(), public.f(1), pg_catalog.now(), lower(x) FROM t",
			calls: []FuncRef{{Name: "evil_delete"}, {Schema: "public", Name: "f"}, {Schema: "pg_catalog", Name: "now"}, {Name: "lower"}}},
		{name: "call_proc", sql: "CALL s.evil_proc()", calls: []FuncRef{{Schema: "s", Name: "evil_proc"}}},
		{name: "operators", sql: "SELECT a ### b, a OPERATOR(public.##) b, x BETWEEN 1 AND 2 FROM t WHERE c = ANY (SELECT d FROM u) ORDER BY a USING ~<~",
			ops: []FuncRef{{Name: "###"}, {Schema: "public", Name: "##"}, {Name: ">="}, {Name: "<="}, {Name: "="}, {Name: "~<~"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Analyze(tt.sql)
			if a.Class == ClassUnparsed {
				t.Fatalf("unparsed: %v", a.Err)
			}
			var exec []string
			var prep, dealloc string
			var all bool
			for _, st := range a.Statements {
				exec = append(exec, st.Executes...)
				prep += st.Prepares
				dealloc += st.Deallocates
				all = all || st.DeallocatesAll
			}
			if !slices.Equal(exec, tt.executes) || prep != tt.prepares || dealloc != tt.deallocates || all != tt.deallocatesAll {
				t.Errorf("executes %q prepares %q deallocates %q all %v; want %q %q %q %v", exec, prep, dealloc, all, tt.executes, tt.prepares, tt.deallocates, tt.deallocatesAll)
			}
			if !slices.Equal(a.Settings, tt.settings) {
				t.Errorf("settings %q, want %q", a.Settings, tt.settings)
			}
			for _, f := range tt.flags {
				if !a.HasFlag(f) {
					t.Errorf("flags %q, want %q among them", a.Flags, f)
				}
			}
			if tt.calls != nil && !slices.Equal(a.Calls, tt.calls) {
				t.Errorf("calls %v, want %v", a.Calls, tt.calls)
			}
			if tt.ops != nil && !slices.Equal(a.Operators, tt.ops) {
				t.Errorf("operators %v, want %v", a.Operators, tt.ops)
			}
		})
	}
}

func TestCommentsScrubbed(t *testing.T) {
	for _, sql := range []string{
		"SELECT 1 /* card 4111111111111111 */ FROM t -- tail 4111111111111111\n",
		"SELECT 1 /* nested /* 4111111111111111 */ still */",
		"SELECT '--not a comment', 1 -- 4111111111111111",
	} {
		a := Analyze(sql)
		if strings.Contains(a.Normalized, "4111") || !a.HasFlag(FlagComment) {
			t.Errorf("%q: normalized %q flags %q", sql, a.Normalized, a.Flags)
		}
	}
	if a := Analyze("SELECT '--x'"); a.HasFlag(FlagComment) {
		t.Errorf("a literal was taken for a comment: %q", a.Flags)
	}
}

func TestRobust(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT 1":                true,
		"SELECT 'a', E'b', $$c$$": true,
		`SELECT '\' AS a -- '`:    false,
		"SELECT 'Á'":              false,
		"SELECT '\xc3\x81\\'":     false,
		"SELECT 1 /* ü */":        false,
		`SELECT "a\b"`:            false,
	} {
		if got := Robust(sql); got != want {
			t.Errorf("Robust(%q) = %v, want %v", sql, got, want)
		}
	}
}

// TestTooDeepIsRefusedNotCrashed: chains that would overflow the C stack
// inside pg_query are refused before it sees them; long flat texts are not.
func TestTooDeepIsRefusedNotCrashed(t *testing.T) {
	for _, sql := range []string{
		"SELECT 1" + strings.Repeat("+1", 30000),
		"SELECT 'a'" + strings.Repeat("||'a'", 30000),
		"SELECT 1" + strings.Repeat("::int", 30000),
		"SELECT 1 FROM t0" + strings.Repeat(" JOIN t ON true", 30000),
		"SELECT 1" + strings.Repeat(" UNION SELECT 1", 30000),
	} {
		if a := Analyze(sql); !errors.Is(a.Err, ErrTooComplex) {
			t.Errorf("%.40s… (%d bytes): %v", sql, len(sql), a.Err)
		}
	}
	for _, sql := range []string{
		"SELECT * FROM t WHERE id IN (" + strings.Repeat("1,", 30000) + "1)",
		"INSERT INTO t VALUES " + strings.Repeat("(1, 'a+b/c'),", 20000) + "(1, 'x')",
		"SELECT '" + strings.Repeat("+", 100000) + "'",
		"SELECT 1 WHERE " + strings.Repeat("id = 1 OR ", 20000) + "true",
	} {
		if a := Analyze(sql); a.Class == ClassUnparsed {
			t.Errorf("%.40s… (%d bytes): %v", sql, len(sql), a.Err)
		}
	}
}

// TestNoLiteralInNormalized: whatever the lexer path, the recorded text
// keeps no constant (the cache key path replaces them; the scanner path
// replaces them in utility statements too, which pg_query's normalisation
// keeps).
func TestNoLiteralInNormalized(t *testing.T) {
	for _, sql := range []string{
		"PREPARE lookup AS SELECT * FROM t WHERE v = '4111111111111111' -- c",
		"CREATE TABLE x AS SELECT '4111111111111111' AS c /* c */",
		"CREATE TABLE y (c text DEFAULT E'4111111111111111')",
		"COMMENT ON TABLE t IS $$4111111111111111$$",
		"COPY t TO '/tmp/4111111111111111'",
		"SELECT U&'4111111111111111', X'4111111111111111', 4111111111111111, 41111111111.11111",
		"DO $x$ BEGIN PERFORM '4111111111111111'; END $x$",
	} {
		a := Analyze(sql)
		if a.Class == ClassUnparsed {
			t.Fatalf("%s: %v", sql, a.Err)
		}
		if strings.Contains(a.Normalized, "4111") {
			t.Errorf("%s: normalized %q", sql, a.Normalized)
		}
	}
	if a := Analyze("SELECT $1, 'x' /* c */"); !strings.Contains(a.Normalized, "$2") {
		t.Errorf("constants are numbered after the text's parameters: %q", a.Normalized)
	}
}

func TestLongNonASCIIIdentifiersFlagged(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes in UTF-8, 40 in LATIN1
	for _, sql := range []string{
		`SELECT * FROM "` + long + `"`,
		`PREPARE "` + long + `" AS SELECT 1`,
		`SELECT 1 AS ` + long,
		`SELECT * FROM U&"` + strings.Repeat(`\00e9`, 12) + `"`,
	} {
		if a := Analyze(sql); !a.HasFlag(FlagLongName) {
			t.Errorf("%.30s…: flags %q", sql, a.Flags)
		}
	}
	for _, sql := range []string{
		`SELECT * FROM "` + strings.Repeat("e", 70) + `"`, // ASCII: the same 63 bytes everywhere
		`SELECT '` + long + `'`,                           // a literal, not a name
		`SELECT * FROM "` + strings.Repeat("é", 20) + `"`, // 40 bytes
	} {
		if a := Analyze(sql); a.Class == ClassUnparsed || a.HasFlag(FlagLongName) {
			t.Errorf("%.30s…: %v %q", sql, a.Err, a.Flags)
		}
	}
}
