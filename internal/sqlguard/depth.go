package sqlguard

import (
	"errors"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// ErrTooComplex is in Analysis.Err for a text whose parse tree could be
// too deep to analyse safely.
var ErrTooComplex = errors.New("the statement nests too deeply to be analysed")

// maxTreeDepth bounds how deep a parse tree the analysis accepts.
//
// PostgreSQL's parser builds a left-deep tree for a chain of left-
// associative operators (1+1+1…, a||b||…, x::t::t…, UNION, JOIN, COLLATE,
// IS NULL) without growing its own stack, and pg_query then walks that tree
// recursively in C to hand it to Go: at about 25,000 levels the C stack
// overflows and the process dies (SIGSEGV), which no recover catches. Nesting
// through parentheses, CASE, subqueries and prefix operators is bounded by
// the parser's stack (10,000), and trees deeper than about 5,000 levels are
// refused by the protobuf decoder anyway, so nothing a server would accept
// from a reasonable client is lost by refusing above this bound.
const maxTreeDepth = 8000

// chainTokens are the tokens that can each add a level to a left-deep
// chain. Comparison operators (=, <, >, LIKE, BETWEEN, IN) do not
// associate and cannot chain; AND and OR lists are flat.
var chainTokens = map[pg_query.Token]bool{
	pg_query.Token_ASCII_37: true, pg_query.Token_ASCII_42: true, pg_query.Token_ASCII_43: true,
	pg_query.Token_ASCII_45: true, pg_query.Token_ASCII_47: true, pg_query.Token_ASCII_94: true,
	pg_query.Token_Op: true, pg_query.Token_TYPECAST: true, pg_query.Token_COLLATE: true,
	pg_query.Token_AT: true, pg_query.Token_IS: true, pg_query.Token_ISNULL: true,
	pg_query.Token_NOTNULL: true, pg_query.Token_UNION: true, pg_query.Token_INTERSECT: true,
	pg_query.Token_EXCEPT: true, pg_query.Token_JOIN: true,
}

// tooDeep reports whether sql's parse tree could exceed maxTreeDepth: an
// upper bound on its depth is the number of chain-forming tokens plus the
// deepest nesting of brackets. Every such token is at least one byte, so a
// shorter text cannot be too deep and is not scanned.
func tooDeep(sql string) bool {
	if len(sql) < maxTreeDepth {
		return false
	}
	res, err := pg_query.Scan(sql)
	if err != nil {
		return false // the parser will reject it too, without building a tree
	}
	chain, depth, maxDepth := 0, 0, 0
	for _, t := range res.GetTokens() {
		switch {
		case chainTokens[t.Token]:
			chain++
		case t.Token == pg_query.Token_ASCII_40 || t.Token == pg_query.Token_ASCII_91 || t.Token == pg_query.Token_CASE:
			depth++
			maxDepth = max(maxDepth, depth)
		case t.Token == pg_query.Token_ASCII_41 || t.Token == pg_query.Token_ASCII_93 || t.Token == pg_query.Token_END_P:
			depth--
		}
		if chain+maxDepth > maxTreeDepth {
			return true
		}
	}
	return false
}

// ErrLongName is what an engine says of a text flagged FlagLongName on a
// database whose encoding is not UTF-8.
var ErrLongName = errors.New("identifiers longer than 63 bytes with non-ASCII characters are refused: the server truncates them in the database's encoding, which the analysis cannot know")

// NameLen is how many bytes of an identifier PostgreSQL keeps
// (NAMEDATALEN-1).
const NameLen = 63

// longName reports whether sql has an identifier the server may truncate
// differently than the analysis: PostgreSQL truncates identifiers to 63
// bytes after converting the text to the database's encoding (in LATIN1
// "é" is one byte, in UTF-8 two), and the analysis truncates the UTF-8.
// An ASCII identifier is the same length in every encoding; a Unicode-
// escaped one (U&"…") may decode to anything.
func longName(sql string) bool {
	if len(sql) <= NameLen || Robust(sql) && !strings.Contains(sql, "U&") && !strings.Contains(sql, "u&") {
		return false
	}
	res, err := pg_query.Scan(sql)
	if err != nil {
		return false
	}
	for _, t := range res.GetTokens() {
		if t.Token != pg_query.Token_IDENT && t.Token != pg_query.Token_UIDENT {
			continue
		}
		start, end := int(t.Start), int(t.End)
		if start < 0 || end > len(sql) || end-start <= NameLen {
			continue
		}
		raw := sql[start:end]
		if t.Token == pg_query.Token_UIDENT || !Robust(raw) {
			return true
		}
	}
	return false
}
