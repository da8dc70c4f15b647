package sqlguard

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// showKey renders a key's placeholders readably: S string, E empty string,
// I int32, N other number.
func showKey(k []byte) string {
	return strings.NewReplacer("\x01", "S", "\x02", "I", "\x03", "N", "\x04", "E").Replace(string(k))
}

func key(sql string) (string, bool) {
	k, ok := CacheKey(sql, nil)
	return string(k), ok
}

func TestCacheKey(t *testing.T) {
	const unsure = "<unsure>"
	tests := []struct {
		name, sql, want string
	}{
		{"plain", "SELECT a FROM t WHERE b = 'x' AND c = 42", "SELECT a FROM t WHERE b = S AND c = I"},
		{"whitespace_collapsed", "  SELECT\ta\n\n FROM t  ", "SELECT a FROM t"},
		{"no_space_kept_apart", "a=1", "a=I"},
		{"quote_doubling", "SELECT 'it''s'", "SELECT S"},
		{"empty_string", "SELECT '', ''''", "SELECT E, S"},
		{"non_ascii_string", "SELECT 'Müller'", "SELECT S"},
		{"newline_in_string", "SELECT 'a\nb'", "SELECT S"},
		{"int32_max", "SELECT 2147483647", "SELECT I"},
		{"int32_overflow_is_numeric", "SELECT 2147483648", "SELECT N"},
		{"leading_zeros", "SELECT 000000000000001", "SELECT I"},
		{"decimal", "SELECT 1.5, .5, 1., 1e10, 2.5E-3", "SELECT N, N, N, N, N"},
		{"negative_is_operator", "SELECT -1", "SELECT -I"},
		{"digits_in_identifiers", "SELECT t1.x2 FROM t1", "SELECT t1.x2 FROM t1"},
		{"dollar_in_identifier", "SELECT a$1 FROM t", "SELECT a$1 FROM t"},
		{"param", "SELECT $1, $23", "SELECT $1, $23"},
		{"question_mark_operator", "SELECT j ? 'k'", "SELECT j ? S"},
		{"quoted_identifier", `SELECT "Foo Bar" FROM "t"`, `SELECT "Foo Bar" FROM "t"`},
		{"typed_literal", "SELECT interval '1 day', date '2024-01-01'", "SELECT interval S, date S"},
		{"cast", "SELECT '1'::int", "SELECT S::int"},
		{"string_then_identifier", "SELECT 'a'b", "SELECT Sb"},
		{"float_keyword_without_int", "SELECT 1::float", "SELECT I::float"},
		{"varchar_typmod", "CREATE TABLE t (a varchar(10))", "CREATE TABLE t (a varchar(I))"},
		{"column_name_not_keyword", "SELECT xcolumn 5", "SELECT xcolumn I"},

		{"line_comment", "SELECT 1 -- x", unsure},
		{"block_comment", "SELECT /* x */ 1", unsure},
		{"comment_in_operator", "SELECT 1 +-- x\n 2", unsure},
		{"dollar_quote", "DO $$ BEGIN END $$", unsure},
		{"tagged_dollar_quote", "SELECT $a$x$a$", unsure},
		{"escape_string", "SELECT E'a\\n'", unsure},
		{"escape_string_lower", "SELECT e'a'", unsure},
		{"bit_string", "SELECT B'101'", unsure},
		{"hex_string", "SELECT X'1F'", unsure},
		{"national_string", "SELECT N'x'", unsure},
		{"unicode_string", "SELECT U&'d\\0061t'", unsure},
		{"unicode_identifier", `SELECT U&"d\0061t"`, unsure},
		{"typed_literal_no_space", "SELECT date'2024-01-01'", unsure},
		{"backslash_in_string", `SELECT 'a\'`, unsure},
		{"backslash_outside", `SELECT \x`, unsure},
		{"unterminated_string", "SELECT 'abc", unsure},
		{"unterminated_identifier", `SELECT "abc`, unsure},
		{"doubled_quote_identifier", `SELECT "a""b"`, unsure},
		{"empty_identifier", `SELECT ""`, unsure},
		{"string_continuation", "SELECT 'a'\n'b'", unsure},
		{"adjacent_strings", "SELECT 'a' 'b'", unsure},
		{"trailing_junk", "SELECT 1abc", unsure},
		{"hex_integer", "SELECT 0x1F", unsure},
		{"underscore_integer", "SELECT 1_000", unsure},
		{"exponent_without_digits", "SELECT 1e", unsure},
		{"number_dot_number", "SELECT 1.2.3", unsure},
		{"range_dots", "SELECT 1..2", unsure},
		{"param_junk", "SELECT $1abc", unsure},
		{"number_after_identifier", "SELECT t.5", unsure},
		{"number_after_dot", "SELECT ..5", unsure},
		{"lone_dollar", "SELECT $", unsure},
		{"nul_byte", "SELECT 1\x00; DROP TABLE t", unsure},
		{"control_byte", "SELECT \x01", unsure},
		{"vertical_tab", "SELECT\v1", unsure},
		{"control_in_string", "SELECT 'a\x00b'", unsure},
		{"invalid_utf8_in_string", "SELECT 'a\x80'", unsure},
		{"float_precision", "CREATE TABLE t (a float(10))", unsure},
		{"float_precision_spaced", "CREATE TABLE t (a FLOAT ( 10 ))", unsure},
		{"statistics_column_number", "ALTER INDEX i ALTER COLUMN 1 SET STATISTICS 100", unsure},
		{"statistics_column_number_bare", "ALTER INDEX i ALTER 1 SET STATISTICS 100", unsure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, ok := CacheKey(tt.sql, nil)
			got := showKey(k)
			if !ok {
				got = unsure
			}
			if got != tt.want {
				t.Errorf("CacheKey(%q) = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestCacheKeyAppends(t *testing.T) {
	dst := []byte("prefix:")
	k, ok := CacheKey("SELECT  1", dst)
	if !ok || string(k) != "prefix:SELECT \x02" {
		t.Fatalf("CacheKey appended %q, %v", k, ok)
	}
	// The look-back for FLOAT ( n ) must not read the caller's prefix.
	if _, ok := CacheKey("(1)", []byte("float")); !ok {
		t.Errorf("look-back read into dst's prefix")
	}
}

func TestNormalizeKey(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"SELECT * FROM t WHERE a = 1 AND b = 'x'", "SELECT * FROM t WHERE a = $1 AND b = $2"},
		{"SELECT $2, 'x', $1", "SELECT $2, $3, $1"},
		{"SELECT  'a'b", "SELECT $1 b"},
		{"SELECT a$9, 1", "SELECT a$9, $1"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			k, ok := CacheKey(tt.sql, nil)
			if !ok {
				t.Fatal("unsure")
			}
			if got := normalizeKey(k); got != tt.want {
				t.Errorf("normalizeKey = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCacheKeySameShape: texts that differ only in literal values (and
// whitespace) share a key and an analysis.
func TestCacheKeySameShape(t *testing.T) {
	tests := []struct{ name, a, b string }{
		{"int", "SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE id = 999"},
		{"string", "SELECT * FROM t WHERE s = 'a'", "SELECT * FROM t WHERE s = 'longer; DROP TABLE x --'"},
		{"string_with_quotes", "UPDATE t SET s = 'it''s' WHERE id = 1", "UPDATE t SET s = '''' WHERE id = 2"},
		{"numeric", "SELECT 1.5", "SELECT 1e10"},
		{"whitespace", "SELECT a FROM t", "SELECT\n\ta\n FROM   t"},
		{"where_constant", "DELETE FROM t WHERE 1 = 1", "DELETE FROM t WHERE 1 = 0"},
		{"explain_analyze_value", "EXPLAIN (ANALYZE 1) DELETE FROM t", "EXPLAIN (ANALYZE 0) DELETE FROM t"},
		{"set_config_name", "SELECT set_config('role', 'x', false)", "SELECT set_config('work_mem', '1MB', false)"},
		{"copy_program", "COPY t TO PROGRAM 'gzip'", "COPY t TO PROGRAM 'rm -rf /'"},
		{"set_role", "SET ROLE 'a'", "SET ROLE 'b'"},
		{"typmod", "CREATE TABLE x (a varchar(10))", "CREATE TABLE x (a varchar(20))"},
		{"limit", "SELECT * FROM t LIMIT 0", "SELECT * FROM t LIMIT 100"},
		{"interval", "SELECT now() - interval '1 day'", "SELECT now() - interval '7 years'"},
		{"in_list", "SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t WHERE a IN (3, 4)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, okA := key(tt.a)
			kb, okB := key(tt.b)
			if !okA || !okB || ka != kb {
				t.Fatalf("keys %q (%v) and %q (%v): want equal", showKey([]byte(ka)), okA, showKey([]byte(kb)), okB)
			}
			if diff := diffAnalysis(Analyze(tt.a), Analyze(tt.b)); diff != "" {
				t.Errorf("same key, different analysis: %s", diff)
			}
		})
	}
}

// TestCacheKeyDifferentShape: texts that differ in anything but literal
// values never share a key.
func TestCacheKeyDifferentShape(t *testing.T) {
	tests := []struct{ name, a, b string }{
		{"identifier", "SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE b = 1"},
		{"table", "SELECT * FROM t", "SELECT * FROM u"},
		{"identifier_case", "SELECT * FROM t", "SELECT * FROM T"},
		{"keyword", "SELECT a FROM t", "DELETE a FROM t"},
		{"operator", "SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a > 1"},
		{"quoted_vs_plain", `SELECT * FROM "t"`, "SELECT * FROM t"},
		{"int_vs_numeric", "SELECT 1", "SELECT 1.0"},
		{"int32_vs_bigger", "SELECT 1", "SELECT 2147483648"},
		{"string_vs_int", "SELECT '1'", "SELECT 1"},
		{"empty_vs_string", "COPY t FROM ''", "COPY t FROM 'x'"},
		{"literal_vs_identifier", "SELECT * FROM t WHERE a = 'b'", "SELECT * FROM t WHERE a = b"},
		{"literal_vs_quoted_identifier", "SELECT * FROM t WHERE a = 'b'", `SELECT * FROM t WHERE a = "b"`},
		{"literal_vs_param", "SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = $1"},
		{"params", "SELECT $1", "SELECT $2"},
		{"statement_count", "SELECT 1", "SELECT 1; SELECT 1"},
		{"trailing_semicolon", "SELECT 1", "SELECT 1;"},
		{"literal_count", "SELECT * FROM t WHERE a IN (1)", "SELECT * FROM t WHERE a IN (1, 2)"},
		{"space_vs_none", "SELECT a=1", "SELECT a = 1"},
		{"sign", "SELECT -1", "SELECT 1"},
		{"alias", "SELECT a x FROM t", "SELECT a y FROM t"},
		{"cast_type", "SELECT '1'::int", "SELECT '1'::text"},
		{"no_where", "DELETE FROM t WHERE id = 1", "DELETE FROM t"},
		{"where_true_keyword", "DELETE FROM t WHERE true", "DELETE FROM t WHERE false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, okA := key(tt.a)
			kb, okB := key(tt.b)
			if okA && okB && ka == kb {
				t.Errorf("%q and %q share key %q", tt.a, tt.b, showKey([]byte(ka)))
			}
		})
	}
	// Comments can differ only where the lexer is unsure.
	for _, s := range []string{"SELECT 1 -- a", "SELECT 1 /* a */", "SELECT 1 /* b */"} {
		if _, ok := key(s); ok {
			t.Errorf("CacheKey(%q) is sure of a comment", s)
		}
	}
}

// shapeCorpus is the SQL of TestAnalyze plus statements with many
// literals, for the generated soundness tests.
func shapeCorpus() []string {
	c := []string{
		"SELECT * FROM t WHERE a = 1 AND b = 'x' AND c > 1.5 OR d IN (1, 2, 3) LIMIT 10 OFFSET 20",
		"UPDATE t SET a = 'x', b = 2 WHERE id = 3 OR 1 = 1",
		"DELETE FROM t WHERE 'a' = 'b'",
		"DELETE FROM t WHERE 1 = 1 AND 2 = 2",
		"INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y') ON CONFLICT (a) DO UPDATE SET b = 'z'",
		"SELECT set_config('search_path', 'hr', false), current_setting('role')",
		"COPY t FROM PROGRAM 'cat /etc/passwd' WITH (FORMAT 'csv', DELIMITER ',')",
		"COPY t TO '/tmp/out' WITH (FORMAT csv, HEADER 1)",
		"EXPLAIN (ANALYZE 1, COSTS 0) DELETE FROM t WHERE id = 1",
		"SET ROLE 'admin'",
		"SET standard_conforming_strings = 'off'",
		"SET transaction_read_only = 'off'",
		"BEGIN READ WRITE ISOLATION LEVEL SERIALIZABLE",
		"PREPARE q (int) AS SELECT * FROM t WHERE a = $1 AND b = 'x'",
		"EXPLAIN ANALYZE EXECUTE q(1, 'x')",
		"SELECT a || 'x', b @@ 'q', c BETWEEN 1 AND 2, d LIKE 'x%' FROM t ORDER BY a USING <",
		"SET work_mem = 64",
		"SET statement_timeout = '5s'",
		"CREATE TABLE x (a varchar(10), b numeric(10, 2), c int DEFAULT 5 CHECK (c > 0))",
		"ALTER TABLE t ALTER COLUMN c SET STATISTICS 100",
		"SELECT now() - interval '1 day', date '2024-01-01', '1'::int, 1::float",
		"SELECT * FROM t ORDER BY 1 DESC FETCH FIRST 5 ROWS ONLY",
		"FETCH 10 FROM c",
		"SELECT pg_read_file('/etc/passwd', 0, 100)",
		"SELECT lo_export(1234, '/tmp/x')",
		"SELECT * FROM t WHERE a = $1 AND b = 'x'",
		"PREPARE p (int) AS SELECT * FROM t WHERE a = $1 AND b = 5",
		"EXECUTE p(1, 'x')",
		"NOTIFY ch, 'payload'",
		"SELECT pg_notify('ch', 'x')",
		"DO 'BEGIN PERFORM 1; END'",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
		"CREATE ROLE r PASSWORD 'secret' VALID UNTIL '2030-01-01' CONNECTION LIMIT 5",
		"SELECT 1 2",
		"SELECT 'a' FROM",
		"SELECT * FROM t WHERE a = 'x' 'y'",
		"LOCK t IN ACCESS SHARE MODE NOWAIT",
		"SELECT 2147483647, 2147483648, -2147483648, 9999999999999999999999",
		"CREATE TABLE p1 PARTITION OF p FOR VALUES WITH (MODULUS 4, REMAINDER 1)",
		"CREATE SEQUENCE s INCREMENT 0 START 5",
		"ALTER TABLE t ADD CONSTRAINT c CHECK (a > 5) NOT VALID",
		"SELECT a[1], a[1:2] FROM t",
		"SELECT ROW(1, 'x') = ROW(2, 'y')",
		"SELECT CASE WHEN a = 1 THEN 'x' ELSE 'y' END FROM t",
		"SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (42)",
		"SELECT xmlelement(name x, 'y'), json_object('a' VALUE 1)",
		"SELECT * FROM json_table('{}', '$.a' COLUMNS (x int PATH '$.x'))",
		"SELECT 'x' COLLATE \"C\"",
		"SET TIME ZONE 'UTC'",
		"SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE",
		"SELECT * FROM generate_series(1, 10) g(i)",
		"VACUUM (PARALLEL 2) t",
		"CREATE INDEX i ON t (a) WITH (fillfactor = 70)",
		"CLUSTER t USING i",
		"SELECT 1 FROM t GROUP BY 1 HAVING count(*) > 5",
		"SELECT * FROM t WHERE a LIKE 'x%' ESCAPE '#'",
		"SELECT * FROM t WHERE a BETWEEN 1 AND 10",
		"SELECT * FROM t WHERE a IS DISTINCT FROM 5",
		"SELECT 5 !",
		"SELECT @ -5",
		"SELECT 1 < 2, 3 <> 4, 5 != 6",
		"COMMENT ON TABLE t IS 'x'",
		"SECURITY LABEL ON TABLE t IS 'x'",
		"ALTER SYSTEM SET work_mem = '1GB'",
		"SELECT * FROM t WHERE a = ANY ('{1,2}'::int[])",
		"SELECT .5, 5., 1e-3, 1E+3",
		"PREPARE TRANSACTION 'gid'",
		"CREATE TABLE t (a int) WITH (fillfactor = 10)",
		"SELECT * FROM t LIMIT ALL OFFSET 5",
		"SELECT 'a', 'b';SELECT 1",
		"CREATE TABLE x (a float)",
		"SELECT float8 '1.5'",
		"ALTER TABLE t ALTER c TYPE numeric(5, 1)",
		"SELECT t.column FROM t",
		"CREATE TABLE t (a interval(3), b timestamp(6), c bit(5), d char(2))",
	}
	for _, tt := range analyzeCases() {
		c = append(c, tt)
	}
	return c
}

// literalFor returns a random literal of a kind, drawn to exercise what
// the lexer treats as a literal's inside: quotes, semicolons, comment and
// dollar-quote markers, non-ASCII, int32 bounds.
func literalFor(r *rand.Rand, kind byte) string {
	switch kind {
	case keyEmpty:
		return "''"
	case keyString:
		pieces := []string{"a", "x y", "''", ";", "--", "/*", "*/", "$$", `"`, "é", "日本", ")", ",", "\n", "\t", "0", "DROP TABLE t", "'' OR ''1''=''1"}
		var b strings.Builder
		b.WriteByte('\'')
		for range 1 + r.IntN(3) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		b.WriteByte('\'')
		return b.String()
	case keyInt:
		ints := []string{"0", "1", "7", "42", "2147483647", "0000012", "00000000002147483647"}
		if r.IntN(2) == 0 {
			return fmt.Sprint(r.Int32())
		}
		return ints[r.IntN(len(ints))]
	default:
		nums := []string{"1.5", ".5", "1.", "0.0", "1e10", "2.5E-3", "7e+2", "2147483648", "99999999999999999999", "3.14159265358979323846"}
		return nums[r.IntN(len(nums))]
	}
}

// sameShape rewrites sql with every literal replaced by another of the same
// kind and every whitespace run by another: a text that must share sql's
// key and analysis.
func sameShape(r *rand.Rand, sql string) string {
	var spans []span
	if _, ok := lex(sql, nil, &spans); !ok {
		return sql
	}
	ws := []string{" ", "  ", "\t", "\n", "\r\n", "\f", " \n\t "}
	var b strings.Builder
	prev := 0
	for _, sp := range spans {
		b.WriteString(sql[prev:sp.start])
		if sp.kind == ' ' {
			b.WriteString(ws[r.IntN(len(ws))])
		} else {
			b.WriteString(literalFor(r, sp.kind))
		}
		prev = sp.end
	}
	b.WriteString(sql[prev:])
	return b.String()
}

// diffAnalysis describes how two analyses differ in anything the cache
// shares ("" if they do not). Unparsed analyses compare by class only: the
// error text quotes the text, literals included, and is never cached.
func diffAnalysis(a, b *Analysis) string {
	if a.Class != b.Class {
		return fmt.Sprintf("class %q vs %q (errors %v / %v)", a.Class, b.Class, a.Err, b.Err)
	}
	if a.Class == ClassUnparsed {
		return ""
	}
	type field struct {
		name string
		x, y any
	}
	fields := []field{
		{"tables", a.Tables, b.Tables}, {"columns", a.Columns, b.Columns},
		{"functions", a.Functions, b.Functions}, {"flags", a.Flags, b.Flags},
		{"accesses", a.Accesses, b.Accesses}, {"fingerprint", a.Fingerprint, b.Fingerprint},
		{"normalized", a.Normalized, b.Normalized}, {"statements", a.Statements, b.Statements},
		{"calls", a.Calls, b.Calls}, {"operators", a.Operators, b.Operators}, {"settings", a.Settings, b.Settings},
		{"attributes", a.Attributes, b.Attributes}, {"casts", a.Casts, b.Casts}, {"syntax", a.SyntaxCalls, b.SyntaxCalls},
	}
	for _, f := range fields {
		if fmt.Sprint(f.x) != fmt.Sprint(f.y) {
			return fmt.Sprintf("%s %v vs %v", f.name, f.x, f.y)
		}
	}
	return ""
}

// TestCacheKeySoundGenerated rewrites every corpus statement's literals and
// whitespace many times: each rewrite must share the key and the analysis.
func TestCacheKeySoundGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 20
	if testing.Short() {
		n = 3
	}
	for _, sql := range shapeCorpus() {
		k, ok := key(sql)
		if !ok {
			continue
		}
		want := Analyze(sql)
		for range n {
			other := sameShape(r, sql)
			k2, ok2 := key(other)
			if !ok2 || k2 != k {
				t.Errorf("%q -> %q: key %q (%v), want %q", sql, other, showKey([]byte(k2)), ok2, showKey([]byte(k)))
				continue
			}
			if diff := diffAnalysis(want, Analyze(other)); diff != "" {
				t.Errorf("%q vs %q share a key but differ: %s", sql, other, diff)
			}
		}
	}
}

// TestCacheKeyMutationsDiffer changes one byte outside literals in every
// possible way a tokeniser cares about and checks the key changes (or the
// lexer is unsure): nothing but a literal's value may be abstracted.
func TestCacheKeyMutationsDiffer(t *testing.T) {
	repl := []byte{'a', 'Z', '_', '1', '$', '"', '\'', '-', '/', '*', '.', ';', '(', ' ', '=', '&'}
	for _, sql := range shapeCorpus() {
		k, ok := key(sql)
		if !ok {
			continue
		}
		var spans []span
		lex(sql, nil, &spans)
		inLiteral := func(i int) bool {
			return slices.ContainsFunc(spans, func(s span) bool { return s.kind != ' ' && i >= s.start && i < s.end })
		}
		for i := range len(sql) {
			if inLiteral(i) {
				continue
			}
			for _, c := range repl {
				if c == sql[i] || isSpace(c) && isSpace(sql[i]) {
					continue
				}
				m := sql[:i] + string(c) + sql[i+1:]
				if k2, ok2 := key(m); ok2 && k2 == k {
					t.Errorf("%q and %q share key %q", sql, m, showKey([]byte(k)))
				}
			}
		}
	}
}
