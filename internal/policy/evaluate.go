package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
)

// ErrBadInput marks an Evaluate error caused by its input rather than by a
// policy, so `gatehouse policy test` can tell a usage error from a deny.
var ErrBadInput = errors.New("bad input")

// TestInput is a request written the way a person types it at
// `gatehouse policy test`.
type TestInput struct {
	Principal string // an entity UID: Agent::"a"
	Action    string // Action::"sql:select", or just sql:select
	Resource  string // Table::"pg/public.users"
	Context   string // a JSON object in Cedar's JSON value format; "" for none
	// Entities is a JSON array in Cedar's JSON entity format, e.g. the
	// principal with its scopes and groups. Nil for none.
	Entities []byte
}

// Evaluate decides a request given as text. Entities not in in.Entities are
// made up: a principal with no scopes, groups or connections, and a resource
// `in` the connection named before the first "/" of its id (Gatehouse's
// naming: Table::"pg/public.users" is in Connection::"pg"). Context attributes
// left out get their zero value, and context.connection defaults to the
// resource's connection. Any error wraps ErrBadInput.
func (s *Set) Evaluate(in TestInput) (Decision, error) {
	d, err := s.evaluate(in)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return d, nil
}

func (s *Set) evaluate(in TestInput) (Decision, error) {
	principal, err := parseUID("principal", in.Principal)
	if err != nil {
		return Decision{}, err
	}
	resource, err := parseUID("resource", in.Resource)
	if err != nil {
		return Decision{}, err
	}
	actionName := in.Action
	if strings.Contains(in.Action, "::") {
		uid, err := parseUID("action", in.Action)
		if err != nil {
			return Decision{}, err
		}
		if uid.Type != actionType {
			return Decision{}, fmt.Errorf("action: want Action::\"NAME\", got %s", in.Action)
		}
		actionName = string(uid.ID)
	}
	a, ok := s.schema.actions[actionName]
	if !ok {
		return Decision{}, fmt.Errorf("action: unknown action %q (known: %s)", actionName, strings.Join(s.actionNames(), ", "))
	}

	extra := types.EntityMap{}
	if len(in.Entities) > 0 {
		if err := extra.UnmarshalJSON(in.Entities); err != nil {
			return Decision{}, fmt.Errorf("entities: %w", err)
		}
		for uid, e := range extra {
			if err := s.schema.validator.Entity(e); err != nil {
				return Decision{}, fmt.Errorf("entities: %s: %w", uid, err)
			}
		}
	}
	ents := &requestEntities{actions: s.schema.actionEntities, extra: extra}
	if e, ok := extra[principal]; ok {
		ents.principal = e
	} else {
		ents.principal = Principal{Type: string(principal.Type), ID: string(principal.ID)}.entity()
	}
	if e, ok := extra[resource]; ok {
		ents.resource = e
	} else {
		r := Resource{Type: string(resource.Type), ID: string(resource.ID)}
		if conn, _, found := strings.Cut(r.ID, "/"); found && r.Type != Connection {
			r.Connection = conn
		}
		ents.resource = r.entity()
	}

	ctx := types.RecordMap{}
	if strings.TrimSpace(in.Context) != "" {
		var rec types.Record
		if err := rec.UnmarshalJSON([]byte(in.Context)); err != nil {
			return Decision{}, fmt.Errorf("context: want a JSON object: %w", err)
		}
		ctx = rec.Map()
	}
	if _, ok := ctx["connection"]; !ok {
		ctx["connection"] = types.String(connectionOf(ents.resource))
	}
	for k, v := range a.defaults {
		if _, ok := ctx[k]; !ok {
			ctx[k] = v
		}
	}
	if err := checkContext(actionName, a.context, ctx); err != nil {
		return Decision{}, err
	}
	req := cedar.Request{
		Principal: principal,
		Action:    a.uid,
		Resource:  resource,
		Context:   types.NewRecord(ctx),
	}
	// The validator words what checkContext has not caught: unknown types and
	// principal or resource types the action does not take.
	if err := s.schema.validator.Request(req); err != nil {
		return Decision{}, fmt.Errorf("request: %w", err)
	}
	return s.authorize(string(principal.Type), actionName, connectionsOf(ents, ents.resource), ents, req), nil
}

// connectionsOf lists the Connections e is, or is transitively in: with
// caller-supplied entities a resource may have several.
func connectionsOf(ents types.EntityGetter, e types.Entity) []string {
	var conns []string
	seen := map[types.EntityUID]bool{e.UID: true}
	todo := []types.Entity{e}
	for len(todo) > 0 {
		cur := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if cur.UID.Type == Connection {
			conns = append(conns, string(cur.UID.ID))
		}
		for p := range cur.Parents.All() {
			if seen[p] {
				continue
			}
			seen[p] = true
			if pe, ok := ents.Get(p); ok {
				todo = append(todo, pe)
			} else {
				todo = append(todo, types.Entity{UID: p})
			}
		}
	}
	return conns
}

func parseUID(what, text string) (types.EntityUID, error) {
	var uid types.EntityUID
	if err := uid.UnmarshalCedar([]byte(strings.TrimSpace(text))); err != nil {
		return uid, fmt.Errorf(`%s: want an entity like Type::"id", got %q`, what, text)
	}
	return uid, nil
}

func (s *Set) actionNames() []string {
	names := make([]string, 0, len(s.schema.actions))
	for n := range s.schema.actions {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// connectionOf is the connection an entity belongs to: itself for a
// Connection, else its Connection parent ("" when it has none).
func connectionOf(e types.Entity) string {
	if e.UID.Type == Connection {
		return string(e.UID.ID)
	}
	for p := range e.Parents.All() {
		if p.Type == Connection {
			return string(p.ID)
		}
	}
	return ""
}

// checkContext names the attribute at fault, which the validator's message
// for a bad context does not.
func checkContext(action string, want resolved.RecordType, ctx types.RecordMap) error {
	for k, v := range ctx {
		attr, ok := want[k]
		if !ok {
			known := make([]string, 0, len(want))
			for name := range want {
				known = append(known, string(name))
			}
			slices.Sort(known)
			return fmt.Errorf("context: %s takes no attribute %q (it takes %s)", action, k, strings.Join(known, ", "))
		}
		v, err := completeRecord(v, attr.Type)
		if err != nil {
			return fmt.Errorf("context: attribute %q of %s: %w", k, action, err)
		}
		ctx[k] = v
		if !hasType(v, attr.Type) {
			return fmt.Errorf("context: attribute %q of %s must be %s, got %s", k, action, typeName(attr.Type), v.MarshalCedar())
		}
	}
	return nil
}

func hasType(v types.Value, t resolved.IsType) bool {
	switch t := t.(type) {
	case resolved.StringType:
		_, ok := v.(types.String)
		return ok
	case resolved.LongType:
		_, ok := v.(types.Long)
		return ok
	case resolved.BoolType:
		_, ok := v.(types.Boolean)
		return ok
	case resolved.SetType:
		set, ok := v.(types.Set)
		if !ok {
			return false
		}
		for e := range set.All() {
			if !hasType(e, t.Element) {
				return false
			}
		}
		return true
	case resolved.EntityType:
		uid, ok := v.(types.EntityUID)
		return ok && uid.Type == types.EntityType(t)
	}
	return true // records, extensions: left to the validator
}

func typeName(t resolved.IsType) string {
	switch t := t.(type) {
	case resolved.StringType:
		return "a String"
	case resolved.LongType:
		return "a Long"
	case resolved.BoolType:
		return "a Bool"
	case resolved.SetType:
		return "a Set<" + strings.TrimPrefix(strings.TrimPrefix(typeName(t.Element), "a "), "an ") + ">"
	case resolved.EntityType:
		return "a " + string(t)
	}
	return fmt.Sprintf("%T", t)
}
