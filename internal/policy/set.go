package policy

import (
	"iter"
	"slices"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/ast"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Effect is what a policy does when it matches.
type Effect string

const (
	Permit Effect = "permit"
	Forbid Effect = "forbid"
)

// PolicyInfo describes one loaded policy.
type PolicyInfo struct {
	// ID is the policy's @id annotation, or "FILE:LINE" where it starts
	// ("FILE:LINE:COL" if two start on one line). Unique in a Set.
	ID     string
	Effect Effect
	File   string // file name within the policy directory
	Line   int
	Column int
	// Annotations holds every @key("value") on the policy, @id included,
	// such as @reason for guardrails and @approval for approval-gated permits.
	// It is shared by every Decision that names the policy: do not modify.
	Annotations map[string]string
}

// Set is an immutable, validated set of policies. It is safe for concurrent use.
type Set struct {
	schema   *compiledSchema
	policies []PolicyInfo
	compiled []*cedar.Policy
	byID     map[cedar.PolicyID]int // index into policies and compiled
	// index holds, for each action and principal type a request can carry,
	// the policies whose scope could match it, split by the connection their
	// resource scope names. Every other policy's scope would be false, and
	// Cedar evaluates the scope before the conditions, so skipping it
	// changes no decision and no diagnostic.
	index map[indexKey]*candidates
	files int
}

type indexKey struct{ action, principalType string }

func newSet(cs *compiledSchema) *Set {
	return &Set{schema: cs, byID: map[cedar.PolicyID]int{}}
}

func (s *Set) add(info PolicyInfo, p *cedar.Policy) {
	s.byID[cedar.PolicyID(info.ID)] = len(s.policies)
	s.policies = append(s.policies, info)
	s.compiled = append(s.compiled, p)
}

// Len returns the number of policies.
func (s *Set) Len() int { return len(s.policies) }

// Files returns the number of *.cedar files the set was loaded from.
func (s *Set) Files() int { return s.files }

// Policies returns every policy in file and position order.
func (s *Set) Policies() []PolicyInfo {
	return append([]PolicyInfo(nil), s.policies...)
}

// candidates are the policies one action and principal type may match, in
// load order. Each is compiled without the parts of its scope the index has
// already decided, so evaluation skips the `in` checks that would otherwise
// dominate it.
type candidates struct {
	any []candidate // whatever the resource's connection
	// byConn holds the policies whose resource scope is `in` one
	// Connection, by its name.
	byConn map[string][]candidate
}

type candidate struct {
	pos    int // in Set.policies: merging by it keeps load order
	id     cedar.PolicyID
	policy *cedar.Policy
}

// forConnections iterates the policies that may match a resource in the
// given connections (its own ancestors, or itself for a Connection).
func (c *candidates) forConnections(conns ...string) cedar.PolicyIterator {
	if c == nil {
		return candidateList(nil)
	}
	switch len(conns) {
	case 0:
		return candidateList(c.any)
	case 1:
		return mergedCandidates{c.any, c.byConn[conns[0]]}
	}
	list := slices.Clone(c.any)
	for _, conn := range conns {
		list = append(list, c.byConn[conn]...)
	}
	slices.SortFunc(list, func(a, b candidate) int { return a.pos - b.pos })
	return candidateList(list)
}

type candidateList []candidate

func (l candidateList) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, c := range l {
			if !yield(c.id, c.policy) {
				return
			}
		}
	}
}

// mergedCandidates walks two lists sorted by pos as one, without allocating
// the merged list on the request path.
type mergedCandidates struct{ a, b []candidate }

func (m mergedCandidates) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		a, b := m.a, m.b
		for len(a) > 0 || len(b) > 0 {
			var c candidate
			if len(b) == 0 || (len(a) > 0 && a[0].pos < b[0].pos) {
				c, a = a[0], a[1:]
			} else {
				c, b = b[0], b[1:]
			}
			if !yield(c.id, c.policy) {
				return
			}
		}
	}
}

func (s *Set) buildIndex() {
	s.index = map[indexKey]*candidates{}
	principalTypes := []string{Agent, User}
	for i, p := range s.compiled {
		orig := (*xast.Policy)(p.AST())
		conn, resourceScope := connectionScope(orig.Resource)
		cand := candidate{pos: i, id: cedar.PolicyID(s.policies[i].ID), policy: trimmed(orig, resourceScope)}
		for name, a := range s.schema.actions {
			if !actionScopeMatches(orig.Action, a) {
				continue
			}
			for _, pt := range principalTypes {
				if !a.principals[pt] || !s.principalScopeMatches(orig.Principal, pt) {
					continue
				}
				k := indexKey{name, pt}
				c := s.index[k]
				if c == nil {
					c = &candidates{byConn: map[string][]candidate{}}
					s.index[k] = c
				}
				if conn == "" {
					c.any = append(c.any, cand)
				} else {
					c.byConn[conn] = append(c.byConn[conn], cand)
				}
			}
		}
	}
}

// trimmed compiles p again with its action scope, and a principal scope that
// only names a type, replaced by "any" (the index guarantees both for every
// request that reaches the policy), and with the given resource scope.
func trimmed(p *xast.Policy, resource xast.IsResourceScopeNode) *cedar.Policy {
	cp := *p
	switch cp.Action.(type) {
	case xast.ScopeTypeEq, xast.ScopeTypeIn, xast.ScopeTypeInSet: // what actionScopeMatches decides
		cp.Action = xast.ScopeTypeAll{}
	}
	if _, ok := cp.Principal.(xast.ScopeTypeIs); ok {
		cp.Principal = xast.ScopeTypeAll{}
	}
	cp.Resource = resource
	return cedar.NewPolicyFromAST((*ast.Policy)(&cp))
}

// connectionScope reports the connection a resource scope confines a policy
// to, and the scope left to check once the index has matched that connection.
func connectionScope(scope xast.IsResourceScopeNode) (string, xast.IsResourceScopeNode) {
	switch sc := scope.(type) {
	case xast.ScopeTypeIn:
		if sc.Entity.Type == Connection {
			return string(sc.Entity.ID), xast.ScopeTypeAll{}
		}
	case xast.ScopeTypeEq:
		if sc.Entity.Type == Connection {
			return string(sc.Entity.ID), sc // still must be the Connection itself
		}
	case xast.ScopeTypeIsIn:
		if sc.Entity.Type == Connection {
			return string(sc.Entity.ID), xast.ScopeTypeIs{Type: sc.Type}
		}
	}
	return "", scope
}

func actionScopeMatches(scope xast.IsActionScopeNode, a *actionInfo) bool {
	in := func(uid types.EntityUID) bool { return uid == a.uid || a.ancestors[uid] }
	switch sc := scope.(type) {
	case xast.ScopeTypeAll:
		return true
	case xast.ScopeTypeEq:
		return sc.Entity == a.uid
	case xast.ScopeTypeIn:
		return in(sc.Entity)
	case xast.ScopeTypeInSet:
		for _, uid := range sc.Entities {
			if in(uid) {
				return true
			}
		}
		return false
	}
	return true // a scope form this code does not know: keep the policy, to be safe
}

func (s *Set) principalScopeMatches(scope xast.IsPrincipalScopeNode, principalType string) bool {
	switch sc := scope.(type) {
	case xast.ScopeTypeAll:
		return true
	case xast.ScopeTypeEq:
		return string(sc.Entity.Type) == principalType
	case xast.ScopeTypeIn:
		return s.schema.descendantTypes(sc.Entity.Type)[principalType]
	case xast.ScopeTypeIs:
		return string(sc.Type) == principalType
	case xast.ScopeTypeIsIn:
		return string(sc.Type) == principalType
	}
	return true // a scope form this code does not know: keep the policy, to be safe
}
