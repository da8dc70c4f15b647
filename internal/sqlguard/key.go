package sqlguard

import (
	"strconv"
	"unicode/utf8"
)

// CacheKey lexes sql into the key of its shape: the text with each plain
// literal replaced by a placeholder byte for its kind and each run of
// whitespace collapsed to one space. It appends to dst and returns ok=false
// (and no usable key) whenever it is not sure that two texts with the same
// key parse alike apart from literal values; the caller must then parse the
// text itself.
//
// The rules follow the PostgreSQL lexer (docs: sql-syntax-lexical; the
// source is src/backend/parser/scan.l). Soundness rests on four facts:
//   - Every byte outside literals and whitespace is copied verbatim, so equal
//     keys mean equal identifiers, keywords, operators, parameters, quoted
//     identifiers and statement separators.
//   - Literal kinds stay apart: a string, the empty string, an integer that
//     fits in int32 (the lexer's ICONST) and any other number (FCONST) have
//     distinct placeholders, because the grammar accepts them in different
//     places (varchar(10) takes an Iconst; 1 and 1.0 never share a key), and
//     the parse tree cannot tell COPY from an empty file name from COPY
//     FROM STDIN.
//   - Anything that changes how the text around a literal is lexed makes the
//     lexer unsure: comments, dollar quotes, E'x' B'1' X'F' N'x' U&'x' strings
//     and U&"x" identifiers, backslashes, quote doubling inside a quoted
//     identifier, string continuation across a newline, numbers followed by
//     identifier characters or a dot (PostgreSQL 15 rejects "trailing junk";
//     16 adds 0x1F and 1_000), $ other than a $n parameter, control bytes,
//     and strings that are not valid UTF-8 (the parse tree cannot carry
//     them, so their parse fails).
//   - The grammar checks an integer literal's value in exactly two places
//     (gram.y: FLOAT(p) and ALTER [COLUMN] n SET STATISTICS), so the lexer
//     is unsure of an integer there; no other literal value reaches the
//     analysis (see unrestricted and the EXPLAIN option handling).
func CacheKey(sql string, dst []byte) (key []byte, ok bool) {
	return lex(sql, dst, nil)
}

// span is where a literal of a kind (keyString, keyEmpty, keyInt, keyNum)
// or a whitespace run (kind ' ') is in the text; tests use spans to
// generate texts of the same shape.
type span struct {
	start, end int
	kind       byte
}

// lex is CacheKey, also recording literal spans when spans is not nil.
func lex(sql string, dst []byte, spans *[]span) ([]byte, bool) {
	start := len(dst)
	space := false // a whitespace run is pending
	for i := 0; i < len(sql); {
		c := sql[i]
		kind := byteKind[c]
		if kind == kSpace {
			j := i + 1
			for j < len(sql) && byteKind[sql[j]] == kSpace {
				j++
			}
			if spans != nil {
				*spans = append(*spans, span{i, j, ' '})
			}
			space = true
			i = j
			continue
		}
		if space && len(dst) > start {
			dst = append(dst, ' ')
		}
		space = false
		if kind == kDot && i+1 < len(sql) && isDigit(sql[i+1]) {
			kind = kDigit // .5
		}
		switch kind {
		case kIdent:
			j := i + 1
			for j < len(sql) && identCont[sql[j]] {
				j++
			}
			dst = append(dst, sql[i:j]...)
			i = j
		case kQuote:
			// A string directly after an identifier is E'', B'', X'', N'' or
			// a typed literal (date'…'); after & it may be U&''.
			if len(dst) > start && (isIdentByte(dst[len(dst)-1]) || dst[len(dst)-1] == '&') {
				return dst, false
			}
			j, ok := scanString(sql, i)
			if !ok {
				return dst, false
			}
			// Two strings separated by whitespace with a newline are one
			// string (sql-syntax-lexical 4.1.2.2); without one they are a
			// syntax error. Either way the shape is not "one literal".
			k := j
			for k < len(sql) && isSpace(sql[k]) {
				k++
			}
			if k > j && k < len(sql) && sql[k] == '\'' {
				return dst, false
			}
			lit := byte(keyString)
			if j == i+2 {
				lit = keyEmpty
			}
			dst = append(dst, lit)
			if spans != nil {
				*spans = append(*spans, span{i, j, lit})
			}
			i = j
		case kDQuote:
			if len(dst) > start && dst[len(dst)-1] == '&' {
				return dst, false // U&"…"
			}
			j, ok := scanQuotedIdent(sql, i)
			if !ok {
				return dst, false
			}
			dst = append(dst, sql[i:j]...)
			i = j
		case kDigit:
			// After an identifier byte or a dot only a number starting with a
			// dot can begin (x.5, ..5); be unsure rather than reason about
			// what another number there would lex as.
			if len(dst) > start && (isIdentByte(dst[len(dst)-1]) || dst[len(dst)-1] == '.') {
				return dst, false
			}
			j, lit, ok := scanNumber(sql, i)
			if !ok {
				return dst, false
			}
			if lit == keyInt && valueChecked(dst[start:]) {
				return dst, false
			}
			dst = append(dst, lit)
			if spans != nil {
				*spans = append(*spans, span{i, j, lit})
			}
			i = j
		case kDollar:
			// $n is a parameter; anything else is a dollar quote or junk.
			j := i + 1
			for j < len(sql) && isDigit(sql[j]) {
				j++
			}
			if j == i+1 || j < len(sql) && isIdentByte(sql[j]) {
				return dst, false
			}
			dst = append(dst, sql[i:j]...)
			i = j
		case kDash, kSlash:
			if i+1 < len(sql) && sql[i+1] == "-*"[kind-kDash] {
				return dst, false // comment
			}
			dst = append(dst, c)
			i++
		case kBad:
			// Control bytes (a NUL ends the text for the C parser; \v is
			// whitespace only since PostgreSQL 16) and backslashes.
			return dst, false
		default:
			// Operators and punctuation, one byte at a time.
			dst = append(dst, c)
			i++
		}
	}
	return dst, true
}

// Byte kinds for lex.
const (
	kOther = iota
	kSpace
	kIdent
	kDigit
	kQuote
	kDQuote
	kDollar
	kDot
	kDash  // - (-- starts a comment)
	kSlash // / (/* starts a comment); must follow kDash
	kBad
)

var byteKind = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			t[c] = kSpace
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80:
			t[c] = kIdent
		case c >= '0' && c <= '9':
			t[c] = kDigit
		case c == '\'':
			t[c] = kQuote
		case c == '"':
			t[c] = kDQuote
		case c == '$':
			t[c] = kDollar
		case c == '.':
			t[c] = kDot
		case c == '-':
			t[c] = kDash
		case c == '/':
			t[c] = kSlash
		case c < 0x20 || c == 0x7f || c == '\\':
			t[c] = kBad
		}
	}
	return t
}()

// Placeholder bytes: control bytes never appear verbatim in a key.
const (
	keyString = 0x01 // '…'
	keyInt    = 0x02 // integer that fits in int32 (ICONST)
	keyNum    = 0x03 // any other number (FCONST)
	keyEmpty  = 0x04 // '': the parse tree (protobuf) cannot tell "" from absent
)

func isPlaceholder(c byte) bool { return c >= keyString && c <= keyEmpty }

func isSpace(c byte) bool { return byteKind[c] == kSpace }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isIdentByte is scan.l's ident_cont; ident_start is kIdent. Every byte
// >= 0x80 counts as a letter.
func isIdentByte(c byte) bool { return identCont[c] }

var identCont = func() (t [256]bool) {
	for c := range 256 {
		t[c] = byteKind[c] == kIdent || byteKind[c] == kDigit || c == '$'
	}
	return t
}()

// scanString returns the end of the standard string starting at sql[i]
// (a quote), where a doubled quote stands for one. Non-ASCII content must
// be valid UTF-8: pg_query's tree is a protobuf, whose decoding rejects
// anything else.
func scanString(sql string, i int) (int, bool) {
	ascii := true
	for j := i + 1; j < len(sql); j++ {
		switch c := sql[j]; {
		case c == '\'':
			if j+1 < len(sql) && sql[j+1] == '\'' {
				j++
				continue
			}
			if !ascii && !utf8.ValidString(sql[i:j]) {
				return 0, false
			}
			return j + 1, true
		case c >= 0x80:
			ascii = false
		case c == '\\' || c == 0 || c < 0x20 && !isSpace(c) || c == 0x7f:
			return 0, false
		}
	}
	return 0, false // unterminated
}

// scanQuotedIdent returns the end of the plain quoted identifier starting at
// sql[i]; doubled quotes, backslashes, control bytes and "" are unusual.
func scanQuotedIdent(sql string, i int) (int, bool) {
	for j := i + 1; j < len(sql); j++ {
		switch c := sql[j]; {
		case c == '"':
			if j == i+1 || j+1 < len(sql) && sql[j+1] == '"' {
				return 0, false
			}
			return j + 1, true
		case c == '\\' || c < 0x20 || c == 0x7f:
			return 0, false
		}
	}
	return 0, false
}

// scanNumber returns the end and kind of the decimal number at sql[i]:
// digits [. digits] [e [+-] digits], or . digits [exponent].
func scanNumber(sql string, i int) (int, byte, bool) {
	j := i
	var v int64
	fits, isInt := true, true
	for j < len(sql) && isDigit(sql[j]) {
		v = v*10 + int64(sql[j]-'0')
		if v > 1<<31-1 {
			fits = false
			v = 1 << 31 // stay bounded
		}
		j++
	}
	if j < len(sql) && sql[j] == '.' {
		isInt = false
		j++
		for j < len(sql) && isDigit(sql[j]) {
			j++
		}
	}
	if j < len(sql) && (sql[j] == 'e' || sql[j] == 'E') {
		k := j + 1
		if k < len(sql) && (sql[k] == '+' || sql[k] == '-') {
			k++
		}
		if k < len(sql) && isDigit(sql[k]) {
			isInt = false
			for k < len(sql) && isDigit(sql[k]) {
				k++
			}
			j = k
		}
	}
	// 1abc, 0x1F, 1_000, 1e, 1.5.5 and 1..2 lex differently in different
	// PostgreSQL versions or not as one number at all.
	if j < len(sql) && (isIdentByte(sql[j]) || sql[j] == '.') {
		return 0, 0, false
	}
	if isInt && fits {
		return j, keyInt, true
	}
	return j, keyNum, true
}

// valueChecked reports whether an integer following key would be one whose
// value the grammar checks: FLOAT ( p ) and ALTER [COLUMN] n (gram.y).
func valueChecked(key []byte) bool {
	k := trimSpace(key)
	if len(k) > 0 && k[len(k)-1] == '(' {
		return lastWordIs(trimSpace(k[:len(k)-1]), "float")
	}
	return lastWordIs(k, "column") || lastWordIs(k, "alter")
}

func trimSpace(k []byte) []byte {
	if len(k) > 0 && k[len(k)-1] == ' ' {
		return k[:len(k)-1]
	}
	return k
}

// lastWordIs reports whether k ends with the unquoted identifier w (w in
// lower case; keywords are case-insensitive).
func lastWordIs(k []byte, w string) bool {
	n := len(w)
	if len(k) < n {
		return false
	}
	for i := range n {
		c := k[len(k)-n+i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return len(k) == n || !isIdentByte(k[len(k)-n-1]) && k[len(k)-n-1] != '"'
}

// normalizeKey renders a key as SQL text with each literal replaced by a
// parameter $n, numbered after the highest parameter the text already has,
// as pg_query's normalisation does. Statements sharing a key share this
// text exactly.
func normalizeKey(key []byte) string {
	maxParam := 0
	for i := 0; i < len(key); i++ {
		if key[i] != '$' || i > 0 && isIdentByte(key[i-1]) {
			continue
		}
		n := 0
		for i++; i < len(key) && isDigit(key[i]); i++ {
			if n < 1<<20 {
				n = n*10 + int(key[i]-'0')
			}
		}
		maxParam = max(maxParam, n)
	}
	out := make([]byte, 0, len(key)+16)
	for i, c := range key {
		if !isPlaceholder(c) {
			out = append(out, c)
			continue
		}
		maxParam++
		out = append(out, '$')
		out = strconv.AppendInt(out, int64(maxParam), 10)
		if i+1 < len(key) && isIdentByte(key[i+1]) {
			out = append(out, ' ')
		}
	}
	return string(out)
}
