package policy

import (
	"fmt"
	"math"

	"github.com/cedar-policy/cedar-go/types"
)

// Request is what an engine asks: may this principal do this action on this
// resource, given this context. Engines fill it without knowing Cedar.
type Request struct {
	Principal Principal
	Action    string // as in the schema, without Action::, e.g. "sql:select"
	Resource  Resource
	// Context holds the action's details, as the schema names them: for SQL
	// "class", "tables", "columns", "flags"; for the others "namespace",
	// "verb", "kind", "command", "method", "path", "tool", "arguments".
	// Values are string, bool, any Go integer, []string (a Cedar Set),
	// map[string]any (a Record) or Ref (an entity). Attributes left out, at the top level or
	// in a record, get their zero value; "connection" is always set from
	// Resource. An attribute the action lacks, or a value of the wrong
	// type, denies.
	Context map[string]any
}

// Ref names an entity in a context value, such as the reviewer Group of
// approval:decide (`principal in context.reviewers`).
type Ref struct {
	Type, ID string
}

// Principal is who asks. Scopes, OnBehalfOf and Connections apply to agents
// and come from their token.
type Principal struct {
	Type        string // Agent or User
	ID          string
	Scopes      []string
	OnBehalfOf  string // empty when the agent acts for no one
	Connections []string
	Groups      []string // Group ids the principal is `in`
}

// Resource is what is acted on.
type Resource struct {
	Type string // Connection, Table, Namespace, Host or Tool
	ID   string // e.g. "pg/public.users" for a Table
	// Connection is the connection the resource belongs to, e.g. "pg"; the
	// resource is `in` it. Leave empty when Type is Connection.
	Connection string
}

// connectionName is the connection a resource belongs to: the value of
// context.connection.
func (r Resource) connectionName() string {
	if r.Type == Connection {
		return r.ID
	}
	return r.Connection
}

func (p Principal) entity() types.Entity {
	e := types.Entity{UID: types.NewEntityUID(types.EntityType(p.Type), types.String(p.ID))}
	if len(p.Groups) > 0 {
		parents := make([]types.EntityUID, len(p.Groups))
		for i, g := range p.Groups {
			parents[i] = types.NewEntityUID(Group, types.String(g))
		}
		e.Parents = types.NewEntityUIDSet(parents...)
	}
	if p.Type == Agent {
		attrs := types.RecordMap{
			"scopes":      stringSet(p.Scopes),
			"connections": stringSet(p.Connections),
		}
		if p.OnBehalfOf != "" {
			attrs["on_behalf_of"] = types.String(p.OnBehalfOf)
		}
		e.Attributes = types.NewRecord(attrs)
	}
	return e
}

func (r Resource) entity() types.Entity {
	e := types.Entity{UID: types.NewEntityUID(types.EntityType(r.Type), types.String(r.ID))}
	if r.Type != Connection && r.Connection != "" {
		e.Parents = types.NewEntityUIDSet(types.NewEntityUID(Connection, types.String(r.Connection)))
	}
	return e
}

func stringSet(ss []string) types.Set {
	vs := make([]types.Value, len(ss))
	for i, s := range ss {
		vs[i] = types.String(s)
	}
	return types.NewSet(vs...)
}

// contextRecord merges an engine's context over the action's defaults.
func contextRecord(a *actionInfo, connection string, ctx map[string]any) (types.Record, error) {
	m := make(types.RecordMap, len(a.defaults)+len(ctx))
	for k, v := range a.defaults {
		m[k] = v
	}
	for k, v := range ctx {
		attr, ok := a.context[types.String(k)]
		if !ok {
			return types.Record{}, fmt.Errorf("context %q: no such attribute for %s", k, a.uid.ID)
		}
		cv, err := toValue(v)
		if err != nil {
			return types.Record{}, fmt.Errorf("context %q: %w", k, err)
		}
		if cv, err = completeRecord(cv, attr.Type); err != nil {
			return types.Record{}, fmt.Errorf("context %q: %w", k, err)
		}
		if !hasType(cv, attr.Type) {
			return types.Record{}, fmt.Errorf("context %q: must be %s, got %s", k, typeName(attr.Type), cv.MarshalCedar())
		}
		m[types.String(k)] = cv
	}
	m["connection"] = types.String(connection)
	return types.NewRecord(m), nil
}

func toValue(v any) (types.Value, error) {
	switch v := v.(type) {
	case string:
		return types.String(v), nil
	case bool:
		return types.Boolean(v), nil
	case int:
		return types.Long(v), nil
	case int8:
		return types.Long(v), nil
	case int16:
		return types.Long(v), nil
	case int32:
		return types.Long(v), nil
	case int64:
		return types.Long(v), nil
	case uint8:
		return types.Long(v), nil
	case uint16:
		return types.Long(v), nil
	case uint32:
		return types.Long(v), nil
	case uint:
		if uint64(v) > math.MaxInt64 {
			return nil, fmt.Errorf("%d overflows a Cedar Long", v)
		}
		return types.Long(v), nil
	case uint64:
		if v > math.MaxInt64 {
			return nil, fmt.Errorf("%d overflows a Cedar Long", v)
		}
		return types.Long(v), nil
	case []string:
		return stringSet(v), nil
	case map[string]any:
		return recordValue(v)
	case Ref:
		return types.NewEntityUID(types.EntityType(v.Type), types.String(v.ID)), nil
	case types.Value: // for callers that already speak Cedar
		return v, nil
	}
	return nil, fmt.Errorf("unsupported type %T", v)
}
