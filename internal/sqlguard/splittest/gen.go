package splittest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Gen generates SQL texts that are valid, and each statement of which
// succeeds, when the server reads them as the analysis does (client_encoding
// UTF8, standard_conforming_strings on), on any PostgreSQL from 14 on. The
// texts are adversarial for every other reading: backslashes before quotes,
// non-ASCII characters whose last byte is a lead byte in SJIS, BIG5 or GBK
// (so that a following backslash becomes a trail byte), semicolons and
// comment starts inside every quoting form. Same seed, same texts.
//
// Session state a text changes is limited to application_name (which no
// text reads back), pg_temp functions and transactions a text opens and
// closes itself, so that a text's results do not depend on the texts
// before it.
type Gen struct {
	r *rand.Rand
	// ascii makes the text being generated pure ASCII without a
	// backslash (sqlguard.Robust), so that enough texts are forwarded
	// under every setting for the claim that they read alike.
	ascii bool
	// palette is the few wide characters the text being generated uses,
	// so that some texts convert cleanly from one client encoding or
	// another and run there, read otherwise.
	palette []string
}

// New returns a generator for seed.
func New(seed uint64) *Gen {
	return &Gen{r: rand.New(rand.NewPCG(seed, 0x73706c6974))}
}

// one picks one of xs; for an ASCII text, one that is ASCII without a
// backslash (every list the generator picks from has one).
func (g *Gen) one(xs ...string) string {
	for {
		x := xs[g.r.IntN(len(xs))]
		if !g.ascii || robust(x) {
			return x
		}
	}
}

func robust(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] == '\\' {
			return false
		}
	}
	return true
}

func (g *Gen) chance(p float64) bool { return g.r.Float64() < p }

// wide are non-ASCII characters chosen for their bytes. Several end in a
// byte that SJIS, BIG5, GBK or GB18030 reads as the lead byte of a
// double-byte character, so a backslash (0x5C) after them becomes its trail
// byte: 'Á\' is C3 81 5C, which SJIS reads as C3 (ﾃ) and 81 5C (―); '两\'
// is E4 B8 A4 5C, which BIG5 reads as E4 B8 and A4 5C; '丁\' is E4 B8 81 5C,
// which GBK and GB18030 read as E4 B8 and 81 5C.
var wide = []string{
	"Á", "Ä", "é", "ÿ", "ā", "ß", "Ω", "€", "¥", "Ё", "ｱ", "＼", "\u00a0", "\u2028",
	"日本語", "表", "ソ", "能", "中文", "한국어", "😀", "両", "两", "丁", "七",
}

// atoms are the ASCII pieces of literal and comment contents: everything
// that ends or starts a token in some reading.
var atoms = []string{
	"a", "Z", "0", "42", " ", ";", "; ", "--", "/*", "*/", "$", "$$", "$a$",
	"$_$", `"`, "'", "''", `\`, `\\`, `\'`, "\n", "\r\n", "\t", "%", "E'",
	"U&'", "&", "*", "SELECT 9", "'; SELECT 8; --", `\' ; SELECT 7 ; --`,
}

// content is the value of a literal, identifier or comment: atoms, wide
// characters and wide characters followed by a backslash.
func (g *Gen) content() string {
	n := g.r.IntN(9)
	var b strings.Builder
	for range n {
		switch k := g.r.IntN(10); {
		case k < 6 || g.ascii:
			b.WriteString(g.one(atoms...))
		case k < 8:
			b.WriteString(g.one(g.palette...))
		default:
			b.WriteString(g.one(g.palette...))
			b.WriteByte('\\')
		}
	}
	return b.String()
}

// Text returns one text of zero or more statements; a quarter of them are
// pure ASCII without a backslash.
func (g *Gen) Text() string {
	g.ascii = g.chance(0.25)
	g.palette = g.palette[:0]
	for range 1 + g.r.IntN(3) {
		g.palette = append(g.palette, wide[g.r.IntN(len(wide))])
	}
	if g.chance(0.02) {
		return g.one("", ";", ";;", " ", "\n", " ; ; ", "-- only a comment",
			"/* only */", "/* /* nested ; */ ' */ ;", "--x\n;\n/* */")
	}
	if !g.ascii && g.chance(0.06) {
		return g.eaten()
	}
	var b strings.Builder
	if g.chance(0.1) {
		b.WriteString(g.comment())
		b.WriteString(g.ws())
	}
	open := false // the text so far ends inside a -- comment
	for i := range 1 + g.r.IntN(4) {
		if i > 0 {
			if open {
				b.WriteString(g.one("\n", "\r\n"))
			}
			b.WriteString(g.sep())
		}
		s, o := g.stmt()
		b.WriteString(s)
		open = o
	}
	switch g.r.IntN(6) {
	case 0, 1:
		if open {
			b.WriteString("\n")
		}
		b.WriteString(g.sep())
	case 2:
		if !open { // a comment that ends at the end of the text
			b.WriteString(" --" + g.lineText())
		}
	case 3:
		if open {
			b.WriteString("\n")
		}
		b.WriteString(" " + g.blockComment())
	}
	return b.String()
}

// sep separates two statements: a semicolon, sometimes several (empty
// statements), with or without whitespace and comments around.
func (g *Gen) sep() string {
	s := g.wsOpt() + ";"
	for g.chance(0.15) {
		s += g.wsOpt() + ";"
	}
	return s + g.wsOpt()
}

// ws is whitespace between two tokens; it never starts with a character
// that could join the token before it.
func (g *Gen) ws() string {
	switch k := g.r.IntN(100); {
	case k < 55:
		return " "
	case k < 65:
		return "\n"
	case k < 70:
		return "\t"
	case k < 74:
		return "  "
	case k < 78:
		return "\r\n"
	case k < 80:
		return " \f "
	case k < 90:
		return " " + g.blockComment() + g.one(" ", "\n", "")
	default:
		return " --" + g.lineText() + g.one("\n", "\r\n")
	}
}

func (g *Gen) wsOpt() string {
	if g.chance(0.3) {
		return ""
	}
	return g.ws()
}

func (g *Gen) comment() string {
	if g.chance(0.5) {
		return g.blockComment()
	}
	return "--" + g.lineText() + "\n"
}

// lineText is the text of a -- comment: anything but a line end.
func (g *Gen) lineText() string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, g.content())
}

// blockComment is a /* */ comment, sometimes with comments nested in it
// (PostgreSQL nests them, as the SQL standard says and many tools do not).
func (g *Gen) blockComment() string {
	text := func() string {
		return strings.Map(func(r rune) rune {
			if r == '*' || r == '/' {
				return ' '
			}
			return r
		}, g.content())
	}
	s := "/*" + text()
	for g.chance(0.3) {
		s += g.blockComment() + text()
	}
	return s + "*/"
}

// stmt returns one statement (or a few, as the smuggling forms hold
// semicolons of their own) and whether it ends inside a -- comment.
func (g *Gen) stmt() (string, bool) {
	switch k := g.r.IntN(100); {
	case k < 34:
		return g.selectStmt(), false
	case k < 41:
		return g.valuesStmt(), false
	case k < 45:
		return "SHOW" + g.ws() + g.one("search_path", "TimeZone", "DateStyle", "work_mem", "IntervalStyle", "integer_datetimes", "max_identifier_length", "server_version"), false
	case k < 52:
		return g.setStmt(), false
	case k < 55:
		return "SELECT" + g.ws() + "set_config('application_name'," + g.wsOpt() + g.strExpr(1) + "," + g.wsOpt() + g.one("false", "true") + ")", false
	case k < 67:
		return g.smuggle()
	case k < 72:
		return g.doStmt(), false
	case k < 76:
		return g.funcStmt(), false
	case k < 81:
		return g.txn(), false
	case k < 84:
		return "SELECT" + g.ws() + g.str() + g.ws() + g.one("UNION ALL", "UNION", "EXCEPT", "INTERSECT ALL") + g.ws() + "SELECT" + g.ws() + g.str(), false
	case k < 87:
		return "SELECT" + g.ws() + "*" + g.ws() + "FROM" + g.ws() + "(VALUES" + g.ws() + "(" + g.str() + "," + g.wsOpt() + g.str() + "))" + g.ws() + "AS" + g.ws() + "v(a," + g.wsOpt() + g.columnName() + ")", false
	default:
		return "", false // an empty statement between two semicolons
	}
}

func (g *Gen) selectStmt() string {
	var b strings.Builder
	b.WriteString(g.one("SELECT", "select", "SeLeCt"))
	b.WriteString(g.ws())
	for i := range 1 + g.r.IntN(4) {
		if i > 0 {
			b.WriteString(g.one(",", ", ", " ,"))
			b.WriteString(g.wsOpt())
		}
		b.WriteString(g.item(0))
		if g.chance(0.4) {
			b.WriteString(g.ws() + g.one("AS", "as") + g.ws() + g.alias())
		}
	}
	if g.chance(0.1) {
		b.WriteString(g.ws() + "WHERE" + g.ws() + g.str() + g.ws() + g.one("=", "<>", ">=") + g.ws() + g.str())
	}
	return b.String()
}

func (g *Gen) valuesStmt() string {
	var b strings.Builder
	b.WriteString("VALUES" + g.ws())
	rows, cols := 1+g.r.IntN(3), 1+g.r.IntN(3)
	for i := range rows {
		if i > 0 {
			b.WriteString("," + g.wsOpt())
		}
		b.WriteString("(")
		for j := range cols {
			if j > 0 {
				b.WriteString("," + g.wsOpt())
			}
			if rows == 1 {
				b.WriteString(g.item(1))
			} else {
				b.WriteString(g.str()) // every row's column must take one type
			}
		}
		b.WriteString(")")
	}
	return b.String()
}

// setStmt changes application_name, the one setting texts change: it is
// harmless, and no text reads it back.
func (g *Gen) setStmt() string {
	switch g.r.IntN(7) {
	case 0:
		return "RESET application_name"
	case 1:
		return "SET application_name TO DEFAULT"
	case 2:
		return "SET application_name =" + g.ws() + g.quotedIdent()
	default:
		scope := g.one("", "", "SESSION ", "LOCAL ") // LOCAL outside a transaction only warns
		return "SET " + scope + "application_name" + g.ws() + g.one("=", "TO") + g.ws() + g.sconstOf(g.content())
	}
}

// smuggle returns a statement built so that a reading with
// standard_conforming_strings off, or in an encoding that takes the
// backslash for a trail byte, is also valid SQL with a different number of
// statements: evidence that the gateway must refuse such texts there.
func (g *Gen) smuggle() (string, bool) {
	if g.ascii {
		return g.selectStmt(), false
	}
	c := g.one(append([]string{"", "x"}, g.palette...)...)
	n := g.number()
	switch g.r.IntN(6) {
	case 0: // analysis: two statements and a comment; scs off: one
		return "SELECT " + g.one("", "N", "n") + "'" + c + `\' AS a; SELECT ` + n + "; -- '", true
	case 1: // analysis: one; an encoding that eats the backslash: two
		return "SELECT " + g.one("E", "e") + "'" + c + `\' AS a; SELECT ` + n + "; -- '", false
	case 2: // analysis: one; scs off: the comment hides what follows on the line
		return "SELECT '" + c + `\' , 'q; SELECT ` + n + "; -- '", false
	case 3: // issue 10's example
		return "SELECT '" + c + `\' AS a -- '; SELECT ` + n, true
	case 4: // analysis: a backslash, then a comment; eaten backslash: \' escapes the quote
		return "SELECT E'" + c + `\\' AS a -- '; SELECT ` + n + " -- '", true
	default: // the same through a quote continuation
		return "SELECT 'a'\n'" + c + `\' AS a; SELECT ` + n + "; -- '", true
	}
}

// eaters end in a byte that SJIS, BIG5, GBK or GB18030 takes for a lead
// byte with a following backslash as its trail byte, and convert to UTF-8
// there (see wide).
var eaters = []string{"Á", "Ä", "两", "両", "丁", "七", "\u2028"}

// eaten is a short text in which one such character comes before the
// backslash of \' in E”: read in those encodings, the quote ends the
// constant and the text splits otherwise, with standard_conforming_strings
// on. The rest of the text is ASCII, so that it converts.
func (g *Gen) eaten() string {
	c := g.one(eaters...)
	s := "SELECT " + g.one("E", "e") + "'" + c + `\' AS a; SELECT ` + g.number() + "; -- '"
	if g.chance(0.5) {
		s = "SELECT " + g.number() + g.sep() + s
	}
	if g.chance(0.5) {
		s += "\n" + g.sep() + "SELECT " + g.number()
	}
	return s
}

// doStmt runs a PL/pgSQL block: semicolons inside a string constant.
func (g *Gen) doStmt() string {
	body := "BEGIN" + g.ws() + "PERFORM" + g.ws() + g.item(1) + ";" + g.ws()
	if g.chance(0.3) {
		body += "PERFORM" + g.ws() + g.dollar(g.content()) + ";" + g.ws()
	}
	body += "END"
	lang := ""
	if g.chance(0.3) {
		lang = "LANGUAGE plpgsql" + g.ws()
	}
	return "DO" + g.ws() + lang + g.sconstOf(body)
}

// funcStmt creates a session-local SQL function, with a string body or a
// SQL-standard body (BEGIN ATOMIC … END holds semicolons the grammar, not
// the lexer, keeps inside the statement).
func (g *Gen) funcStmt() string {
	switch g.r.IntN(3) {
	case 0:
		return "CREATE OR REPLACE FUNCTION pg_temp.gh_split_sql()" + g.ws() + "RETURNS text LANGUAGE sql AS" + g.ws() + g.sconstOf("SELECT ("+g.strExpr(1)+")::text")
	case 1:
		var b strings.Builder
		b.WriteString("CREATE OR REPLACE FUNCTION pg_temp.gh_split_atomic() RETURNS text LANGUAGE sql" + g.ws() + "BEGIN ATOMIC" + g.ws())
		for range g.r.IntN(3) {
			b.WriteString("SELECT" + g.ws() + g.item(1) + ";" + g.ws())
		}
		b.WriteString("SELECT (" + g.strExpr(1) + ")::text;" + g.ws() + "END")
		return b.String()
	default:
		return "CREATE OR REPLACE FUNCTION pg_temp.gh_split_return() RETURNS text LANGUAGE sql" + g.ws() + "RETURN (" + g.strExpr(1) + ")::text"
	}
}

// txn is a transaction the text opens and ends itself.
func (g *Gen) txn() string {
	var b strings.Builder
	b.WriteString(g.one("BEGIN", "START TRANSACTION", "BEGIN READ ONLY", "BEGIN TRANSACTION"))
	b.WriteString(g.sep())
	savepoint := g.chance(0.3)
	if savepoint {
		b.WriteString("SAVEPOINT s1" + g.sep())
	}
	for range 1 + g.r.IntN(2) {
		if g.chance(0.7) {
			b.WriteString(g.selectStmt())
		} else {
			b.WriteString(g.valuesStmt())
		}
		b.WriteString(g.sep())
	}
	if savepoint {
		b.WriteString(g.one("RELEASE SAVEPOINT s1", "ROLLBACK TO SAVEPOINT s1") + g.sep())
	}
	b.WriteString(g.one("COMMIT", "END", "ROLLBACK"))
	return b.String()
}

// item is a select-list item of any type.
func (g *Gen) item(depth int) string {
	switch k := g.r.IntN(100); {
	case k < 60 || depth > 2:
		return g.textual(depth)
	case k < 66:
		return g.bits()
	case k < 70:
		return g.strOf(g.one(jsonValues...)) + "::" + g.one("jsonb", "json")
	case k < 73:
		return g.strOf(g.one(`\x4142`, `\\`, "abc", `a\\b`, `\000`)) + "::bytea"
	case k < 78:
		return g.str() + g.ws() + g.one("=", "<>", "<", "IS DISTINCT FROM") + g.ws() + g.str()
	case k < 82:
		return "ARRAY[" + g.strExpr(depth+1) + "," + g.wsOpt() + g.str() + "]"
	case k < 85:
		return g.strOf(g.one(`{a,"b;c"}`, `{"a\\b",""}`, `{"'",$}`)) + "::text[]"
	case k < 88:
		return "ROW(" + g.str() + "," + g.wsOpt() + g.number() + ")"
	case k < 91:
		return g.typedConst()
	case k < 94:
		return g.one("N", "n") + g.plainLit()
	default:
		return "(SELECT" + g.ws() + g.item(depth+1) + ")"
	}
}

var jsonValues = []string{
	`{"a": "b;c"}`, `{"q": "\""}`, `["\u00e9", "é"]`, `{"s": "\\"}`, `{"k": "--"}`,
	`[1, 2, "/* */"]`, `"$$"`, `{"日本": "語"}`, `{"x": "'; SELECT 1; --"}`,
}

// typedConst is a type name followed by a string constant of its syntax.
func (g *Gen) typedConst() string {
	switch g.r.IntN(3) {
	case 0:
		return "interval" + g.ws() + g.sconstOf(g.one("1 day", "2 hours 3 minutes", "P1D"))
	case 1:
		return "date" + g.ws() + g.sconstOf("2020-01-01")
	default:
		return "time" + g.ws() + g.sconstOf("12:34")
	}
}

// textual is an expression of a string or number type.
func (g *Gen) textual(depth int) string {
	if g.chance(0.2) {
		return g.numExpr()
	}
	return g.strExpr(depth)
}

// strExpr is an expression of a string type (never a number, so that it
// can be any text argument).
func (g *Gen) strExpr(depth int) string {
	if depth > 2 {
		return g.str()
	}
	switch k := g.r.IntN(100); {
	case k < 45:
		return g.str()
	case k < 55:
		return g.str() + g.one("::text", "::varchar", "::varchar(3)")
	case k < 58:
		return "CAST(" + g.str() + g.ws() + "AS" + g.ws() + "text)"
	case k < 61:
		return g.one("text", "varchar", "bpchar") + g.ws() + g.sconstOf(g.content())
	case k < 72:
		return g.str() + g.ws() + "||" + g.ws() + g.textual(depth+1)
	case k < 85:
		f := g.one("upper", "lower", "md5", "quote_literal", "quote_ident", "reverse", "btrim", "initcap")
		return f + "(" + g.strExpr(depth+1) + ")"
	case k < 89:
		return g.one("concat", "coalesce") + "(" + g.strExpr(depth+1) + "," + g.wsOpt() + g.strExpr(depth+1) + ")"
	case k < 92:
		return "format(" + g.strOf("%s|%L") + "," + g.wsOpt() + g.strExpr(depth+1) + "," + g.wsOpt() + g.strExpr(depth+1) + ")"
	case k < 95:
		return "substr(" + g.strExpr(depth+1) + ", 1, 3)"
	default:
		return "CASE WHEN" + g.ws() + g.str() + " = " + g.str() + g.ws() + "THEN" + g.ws() + g.strExpr(depth+1) + g.ws() + "ELSE" + g.ws() + g.strExpr(depth+1) + g.ws() + "END"
	}
}

func (g *Gen) number() string {
	return g.one("1", "2", "9", "42", "0", "1.5", ".5", "1.", "1e3", "2.5e-1", "10000000000")
}

// numExpr is a number, sometimes with operators written against comment
// starts: the lexer ends an operator where -- or /* begins.
func (g *Gen) numExpr() string {
	switch g.r.IntN(8) {
	case 0:
		return "2 +-- c ' ;\n 3"
	case 1:
		return "2 */* c ' ; */ 3"
	case 2:
		return "10 -/* c */ 2"
	case 3:
		return "length(" + g.str() + ")"
	case 4:
		return "-" + g.number()
	case 5:
		return "(" + g.number() + g.ws() + g.one("+", "*", "-", "/") + g.ws() + g.one("1", "2", "3") + ")"
	default:
		return g.number()
	}
}

func (g *Gen) bits() string {
	if g.chance(0.5) {
		lit := g.one("B", "b") + "'" + g.digits("01") + "'"
		if g.chance(0.2) {
			lit += g.continuation() + "'" + g.digits("01") + "'"
		}
		return lit
	}
	return g.one("X", "x") + "'" + g.digits("0123456789abcdefABCDEF") + "'"
}

func (g *Gen) digits(set string) string {
	var b strings.Builder
	for range g.r.IntN(9) {
		b.WriteByte(set[g.r.IntN(len(set))])
	}
	return b.String()
}

// str is a string constant of any form, of an arbitrary value.
func (g *Gen) str() string { return g.strOf(g.content()) }

// strOf writes value v as a string constant of any form.
func (g *Gen) strOf(v string) string {
	if g.chance(0.06) {
		return g.one("N", "n") + g.plainOf(v)
	}
	return g.sconstOf(v)
}

// sconstOf writes value v in a form the grammar's Sconst takes: '…',
// E'…', U&'…' or a dollar quote, sometimes continued across lines.
func (g *Gen) sconstOf(v string) string {
	switch k := g.r.IntN(100); {
	case k < 32:
		return g.plainOf(v)
	case k < 57:
		return g.escapeOf(v)
	case k < 72:
		return g.unicodeOf(v)
	default:
		return g.dollar(v)
	}
}

func (g *Gen) plainLit() string { return g.plainOf(g.content()) }

// split cuts v into one to three pieces at character boundaries, for a
// constant continued across lines ('a'<newline>'b' is 'ab').
func (g *Gen) split(v string) []string {
	if !g.chance(0.15) || v == "" {
		return []string{v}
	}
	rs := []rune(v)
	i := g.r.IntN(len(rs) + 1)
	return []string{string(rs[:i]), string(rs[i:])}
}

// continuation is what may stand between two pieces of one string
// constant: whitespace with a newline (docs: sql-syntax-lexical, 4.1.2.1).
// PostgreSQL also allows -- comments there, which pg_query rejects
// (testdata/cases.txt): the generator leaves them to the kept cases.
func (g *Gen) continuation() string {
	return g.one("\n", " \n ", "\n\t", "\r\n", "\n\n  ", " \f\n")
}

// space is whitespace without comments, for the places where pg_query
// takes a comment for a token (around UESCAPE, testdata/cases.txt).
func (g *Gen) space() string {
	return g.one(" ", " ", "\n", "\t", "\r\n", "  ")
}

// plainOf writes v as '…': backslashes are plain characters.
func (g *Gen) plainOf(v string) string {
	var b strings.Builder
	for i, piece := range g.split(v) {
		if i > 0 {
			b.WriteString(g.continuation())
		}
		b.WriteString("'" + strings.ReplaceAll(piece, "'", "''") + "'")
	}
	return b.String()
}

// escapeOf writes v as E'…', writing some characters as escapes (octal,
// hex, \u, \U, UTF-8 bytes one by one, surrogate pairs, a backslash before
// a character that needs none) and each quote as \' or ”.
func (g *Gen) escapeOf(v string) string {
	var b strings.Builder
	b.WriteString(g.one("E", "e"))
	for i, piece := range g.split(v) {
		if i > 0 {
			b.WriteString(g.continuation())
		}
		b.WriteByte('\'')
		for _, r := range piece {
			switch {
			case r == '\\':
				b.WriteString(`\\`)
			case r == '\'':
				b.WriteString(g.one(`\'`, `''`))
			case g.ascii || g.chance(0.85):
				b.WriteRune(r)
			default:
				b.WriteString(g.escape(r))
			}
		}
		b.WriteByte('\'')
	}
	return b.String()
}

// escape writes r as an E” escape of fixed width, so that what follows
// cannot extend it (docs: sql-syntax-lexical, 4.1.2.2).
func (g *Gen) escape(r rune) string {
	switch short := map[rune]string{'\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`}; {
	case short[r] != "":
		return short[r]
	case r < 0x80 && !strings.ContainsRune("bfnrtuxU01234567", r) && g.chance(0.3):
		return `\` + string(r) // an escape that stands for the character itself
	case r < 0x80 && g.chance(0.5):
		return fmt.Sprintf(`\x%02x`, r)
	case r < 0x80:
		return fmt.Sprintf(`\%03o`, r)
	case r > 0xFFFF && g.chance(0.5):
		r -= 0x10000
		return fmt.Sprintf(`\u%04x\u%04X`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
	case r > 0xFFFF:
		return fmt.Sprintf(`\U%08x`, r)
	case g.chance(0.5):
		return fmt.Sprintf(`\u%04X`, r)
	default:
		var out strings.Builder
		for _, c := range []byte(string(r)) {
			fmt.Fprintf(&out, `\x%02X`, c)
		}
		return out.String()
	}
}

// uescapes are escape characters for UESCAPE: anything but a hex digit,
// +, a quote or whitespace, including the semicolon and comment starts.
var uescapes = []string{"!", "#", ";", "-", "$", "*", "/", "%", "?", "~", "&", "=", ":", "^", "|", "@", "<"}

// unicodeOf writes v as U&'…', with the default escape character or one
// chosen with UESCAPE.
func (g *Gen) unicodeOf(v string) string {
	return g.unicode(v, '\'')
}

// unicode writes v as U&'…' or, with quote '"', as the identifier U&"…".
func (g *Gen) unicode(v string, quote byte) string {
	esc := `\`
	if g.ascii || g.chance(0.6) {
		esc = g.one(uescapes...)
	}
	var b strings.Builder
	b.WriteString(g.one("U&", "u&"))
	pieces := []string{v} // identifiers do not continue across lines
	if quote == '\'' {
		pieces = g.split(v)
	}
	for i, piece := range pieces {
		if i > 0 {
			b.WriteString(g.continuation())
		}
		b.WriteByte(quote)
		for _, r := range piece {
			switch {
			case r == rune(quote):
				b.WriteByte(quote)
				b.WriteByte(quote)
			case string(r) == esc:
				b.WriteString(esc + esc)
			case r > 0xFFFF && g.chance(0.7):
				if g.chance(0.5) {
					fmt.Fprintf(&b, "%s+%06X", esc, r)
				} else {
					r -= 0x10000
					fmt.Fprintf(&b, "%s%04X%s%04x", esc, 0xD800+(r>>10), esc, 0xDC00+(r&0x3FF))
				}
			case r >= 0x80 && g.chance(0.6), r > 0x20 && r < 0x7F && g.chance(0.05):
				fmt.Fprintf(&b, "%s%04x", esc, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte(quote)
	}
	if esc != `\` || g.chance(0.2) {
		b.WriteString(g.space() + g.one("UESCAPE", "uescape") + g.space() + "'" + esc + "'")
	}
	return b.String()
}

// dollarTags are tags of dollar quotes, including the empty tag and a
// non-ASCII one.
var dollarTags = []string{"", "", "a", "_", "x1", "é", "tag", "Q", "日本"}

// dollar writes v dollar-quoted, with a tag whose delimiter v does not
// hold (v may hold other delimiters: $x$ … $y$ … $x$ nests).
func (g *Gen) dollar(v string) string {
	for range 8 {
		d := "$" + g.one(dollarTags...) + "$"
		if strings.Index(v+d, d) == len(v) {
			return d + v + d
		}
	}
	for i := 0; ; i++ {
		if d := fmt.Sprintf("$q%d$", i); strings.Index(v+d, d) == len(v) {
			return d + v + d
		}
	}
}

// alias is a column alias after AS, where the grammar takes any keyword.
func (g *Gen) alias() string {
	if g.chance(0.2) {
		return g.one("select", "from", "E", "N", "uescape")
	}
	return g.columnName()
}

// columnName is an identifier where the grammar takes no reserved
// keyword: a plain one (with $, non-ASCII, or a letter that starts a
// string prefix), a quoted one or a Unicode-escaped one.
func (g *Gen) columnName() string {
	switch g.r.IntN(4) {
	case 0:
		return g.quotedIdent()
	case 1:
		return g.unicode(g.nonEmpty(), '"')
	default:
		return g.one("a", "b1", "x$y", "a$b$", "dollar$$", "_z", "é", "日本語", "ソ", "e", "n", "b", "x", "u", "uescape")
	}
}

func (g *Gen) quotedIdent() string {
	return `"` + strings.ReplaceAll(g.nonEmpty(), `"`, `""`) + `"`
}

// nonEmpty is content for an identifier: never empty, which the server
// rejects.
func (g *Gen) nonEmpty() string {
	if c := g.content(); c != "" {
		return c
	}
	return "x"
}
