package policy

import (
	"fmt"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// Decision is the answer to a Request.
type Decision struct {
	Allow bool
	// Policies are the policies that determined the decision: the permits
	// that matched for an allow, the forbids that matched for a deny, none
	// for the default deny (no permit matched).
	Policies []PolicyInfo
	// Errors are policies that failed to evaluate and were skipped, as Cedar
	// does (rare: requests and policies are both checked against the schema),
	// or a request Gatehouse refused to evaluate (then Allow is false and
	// Policies empty).
	Errors []EvalError
}

// EvalError is a policy that could not be evaluated, or, with a zero Policy,
// a malformed request.
type EvalError struct {
	Policy PolicyInfo
	Msg    string
}

func (e EvalError) Error() string {
	if e.Policy.ID == "" {
		return e.Msg
	}
	return fmt.Sprintf("policy %q (%s:%d): %s", e.Policy.ID, e.Policy.File, e.Policy.Line, e.Msg)
}

// Reason is a one-line explanation for logs and for the error a client sees,
// e.g. `denied by policy "guard-drop": DROP is not allowed for agents`.
func (d Decision) Reason() string {
	if len(d.Policies) == 0 {
		switch {
		case d.Allow:
			return "allowed" // unreachable from Decide; kept total
		case len(d.Errors) > 0 && d.Errors[0].Policy.ID == "":
			return "denied: " + d.Errors[0].Msg
		}
		return "denied: no policy permits this request"
	}
	var b strings.Builder
	if d.Allow {
		b.WriteString("allowed by ")
	} else {
		b.WriteString("denied by ")
	}
	for i, p := range d.Policies {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "policy %q", p.ID)
		if r := p.Annotations["reason"]; r != "" {
			b.WriteString(": ")
			b.WriteString(r)
		}
	}
	return b.String()
}

// Decide evaluates r against the set. A request the schema does not allow (an
// unknown action, a principal or resource type the action does not take, a
// context attribute the action does not have or of the wrong type) is denied,
// with the cause in Errors: checking it here, rather than letting Cedar skip
// the policies that fail on it, keeps a guardrail from being skipped.
func (s *Set) Decide(r Request) Decision {
	a, ok := s.schema.actions[r.Action]
	if !ok {
		return badRequest("unknown action %q", r.Action)
	}
	if !a.principals[r.Principal.Type] {
		return badRequest("principal type %q is not valid for action %q", r.Principal.Type, r.Action)
	}
	if !a.resources[r.Resource.Type] {
		return badRequest("resource type %q is not valid for action %q", r.Resource.Type, r.Action)
	}
	// No real principal or resource lacks an id; and the connection index
	// takes a Connection with an empty id for "no connection".
	if r.Principal.ID == "" || r.Resource.ID == "" {
		return badRequest("principal and resource need an id")
	}
	conn := r.Resource.connectionName()
	ctx, err := contextRecord(a, conn, r.Context)
	if err != nil {
		return badRequest("%v", err)
	}
	ents := &requestEntities{
		principal: r.Principal.entity(),
		resource:  r.Resource.entity(),
		actions:   s.schema.actionEntities,
	}
	req := cedar.Request{
		Principal: ents.principal.UID,
		Action:    a.uid,
		Resource:  ents.resource.UID,
		Context:   ctx,
	}
	var conns []string
	if conn != "" {
		conns = []string{conn}
	}
	return s.authorize(r.Principal.Type, r.Action, conns, ents, req)
}

func badRequest(format string, args ...any) Decision {
	return Decision{Errors: []EvalError{{Msg: fmt.Sprintf(format, args...)}}}
}

// authorize evaluates the policies indexed for the action and principal type
// that may match a resource in conns, the connections it is (transitively) in.
func (s *Set) authorize(principalType, action string, conns []string, ents types.EntityGetter, req cedar.Request) Decision {
	cands := s.index[indexKey{action, principalType}].forConnections(conns...)
	dec, diag := cedar.Authorize(cands, ents, req)
	d := Decision{Allow: dec == cedar.Allow}
	if len(diag.Reasons) > 0 {
		d.Policies = make([]PolicyInfo, len(diag.Reasons))
		for i, r := range diag.Reasons {
			d.Policies[i] = s.policies[s.byID[r.PolicyID]]
		}
	}
	for _, e := range diag.Errors {
		d.Errors = append(d.Errors, EvalError{Policy: s.policies[s.byID[e.PolicyID]], Msg: e.Message})
	}
	return d
}

// requestEntities serves the entities one request can reach: its principal,
// its resource, the schema's actions, and (for Evaluate) any the caller gave.
// Groups and connections need no entity of their own: membership is carried
// by the principal's and the resource's parents.
type requestEntities struct {
	principal, resource types.Entity
	actions             types.EntityMap
	extra               types.EntityMap
}

func (e *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid {
	case e.principal.UID:
		return e.principal, true
	case e.resource.UID:
		return e.resource, true
	}
	if uid.Type == actionType {
		ent, ok := e.actions[uid]
		return ent, ok
	}
	ent, ok := e.extra[uid]
	return ent, ok
}
