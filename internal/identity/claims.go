package identity

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind is the kind of principal a token names.
type Kind string

const (
	// KindAgent is an AI agent or workload; Subject is the agent's name and
	// Actor the human it acts for, if any.
	KindAgent Kind = "agent"
	// KindUser is a human; Subject is the user's name (normally the email)
	// and Groups their groups.
	KindUser Kind = "user"
)

func (k Kind) valid() bool { return k == KindAgent || k == KindUser }

// Scope is an action class a token allows. Scopes do not imply each other:
// a token with write but not read has no read scope. Policy may still say
// more; scopes only narrow.
type Scope string

const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
	ScopeDDL   Scope = "ddl"
	ScopeAdmin Scope = "admin"
)

// knownScopes is also the canonical order scopes are written in.
var knownScopes = [...]Scope{ScopeRead, ScopeWrite, ScopeDDL, ScopeAdmin}

func scopeRank(s Scope) int {
	for i, k := range knownScopes {
		if k == s {
			return i
		}
	}
	return -1
}

// ParseScopes parses a space-separated scope string (the RFC 8693 §2.1 /
// RFC 9068 `scope` form), refusing unknown scopes. The result is
// de-duplicated and in canonical order.
func ParseScopes(s string) ([]Scope, error) {
	fields := strings.Fields(s)
	out := make([]Scope, 0, len(fields))
	for _, f := range fields {
		out = append(out, Scope(f))
	}
	return normalizeScopes(out)
}

// FormatScopes writes scopes in the space-separated form of the `scope` claim.
func FormatScopes(scopes []Scope) string {
	var b strings.Builder
	for i, s := range scopes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(s))
	}
	return b.String()
}

// normalizeScopes checks every scope is known and returns them de-duplicated
// in canonical order.
func normalizeScopes(in []Scope) ([]Scope, error) {
	var seen [len(knownScopes)]bool
	for _, s := range in {
		r := scopeRank(s)
		if r < 0 {
			// The scope comes from a request or config, never from a token
			// we have not verified, so naming it helps and leaks nothing.
			return nil, fmt.Errorf("%w %.40q (known: read, write, ddl, admin)", ErrUnknownScope, string(s))
		}
		seen[r] = true
	}
	out := make([]Scope, 0, len(in))
	for i, ok := range seen {
		if ok {
			out = append(out, knownScopes[i])
		}
	}
	return out, nil
}

// Claims is a verified token's content, the same for Gatehouse tokens and for
// tokens of configured OIDC issuers.
type Claims struct {
	Kind    Kind
	Subject string // agent name, or user name for KindUser
	Actor   string // RFC 8693 act.sub: the human an agent acts for; "" if none
	Email   string
	Groups  []string

	Scopes      []Scope
	Connections []string // connection names or glob patterns; "*" is any

	Issuer    string
	Audience  []string
	ID        string // jti
	KeyID     string // kid of the signing key
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	// External is true when an OIDC issuer, not Gatehouse, signed the token.
	External bool
}

// PrincipalUID is the Cedar entity UID of the token's principal:
// Agent::"name" or User::"name".
func (c Claims) PrincipalUID() string {
	if c.Kind == KindUser {
		return fmt.Sprintf("User::%q", c.Subject)
	}
	return fmt.Sprintf("Agent::%q", c.Subject)
}

// HasScope reports whether the token carries scope s.
func (c Claims) HasScope(s Scope) bool { return slices.Contains(c.Scopes, s) }

// AllowsConnection reports whether the token may use the named connection.
// Entries are exact names or glob patterns (* and ?), so "*" allows any.
func (c Claims) AllowsConnection(name string) bool {
	for _, p := range c.Connections {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

// InGroup reports whether a user token lists group g.
func (c Claims) InGroup(g string) bool { return slices.Contains(c.Groups, g) }

// globMatch matches s against pattern p where * matches any run of
// characters (including '/' and ':', unlike path.Match, because subjects such
// as "repo:acme/app:ref:refs/heads/main" are matched whole) and ? matches one
// character. A pattern without wildcards is an exact match.
func globMatch(p, s string) bool {
	// Iterative matcher with single-star backtracking: linear in practice,
	// never exponential, whatever the pattern.
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		switch {
		case px < len(p) && p[px] == '*':
			starP, starS = px, sx
			px++
		case px < len(p) && (p[px] == '?' || p[px] == s[sx]):
			px++
			sx++
		case starP >= 0:
			starS++
			px, sx = starP+1, starS
		default:
			return false
		}
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}
