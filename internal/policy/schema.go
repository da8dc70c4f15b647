package policy

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

// starterFiles holds the schema and the starter policies; embed needs a package
// variable, and it is never written.
//
//go:embed starter/*.cedar starter/gatehouse.cedarschema
var starterFiles embed.FS

// SchemaFile is the name under which StarterFS carries the schema.
const SchemaFile = "gatehouse.cedarschema"

// Entity type names in the schema, for Principal.Type and Resource.Type.
const (
	Agent      = "Agent"
	User       = "User"
	Group      = "Group"
	Connection = "Connection"
	Table      = "Table"
	Namespace  = "Namespace"
	Host       = "Host"
	Tool       = "Tool"
	Function   = "Function"
	Approval   = "Approval"
)

// actionType is the entity type of every action UID (the schema has no namespace).
const actionType = types.EntityType("Action")

// StarterFS returns the starter policy files and the schema, to be written into
// an empty policy directory (os.CopyFS does it). Policies are *.cedar; the
// schema, SchemaFile, is there for editors and is never read back.
func StarterFS() fs.FS {
	sub, err := fs.Sub(starterFiles, "starter")
	if err != nil {
		panic(fmt.Sprintf("policy: embedded starter files: %v", err)) // a constant path; cannot fail
	}
	return sub
}

// SchemaText returns the Cedar schema, in Cedar's human-readable schema format,
// that every policy is validated against.
func SchemaText() string {
	b, err := starterFiles.ReadFile("starter/" + SchemaFile)
	if err != nil {
		panic(fmt.Sprintf("policy: embedded schema: %v", err)) // embedded at build time; cannot fail
	}
	return string(b)
}

// compiledSchema is the schema parsed once and indexed for the request path.
type compiledSchema struct {
	validator *validate.Validator
	entities  map[types.EntityType]resolved.Entity
	// actions holds the actions a request may name (those with appliesTo),
	// by name without the Action:: prefix.
	actions map[string]*actionInfo
	// actionEntities carries each action's parents so that `action in
	// Action::"sql"` evaluates as declared.
	actionEntities types.EntityMap
}

// actionInfo is what a request for one action needs, computed once.
type actionInfo struct {
	uid        types.EntityUID
	ancestors  map[types.EntityUID]bool
	principals map[string]bool
	resources  map[string]bool
	// defaults holds a zero value for each context attribute, so that an
	// engine fills only what it knows and policies need no `has` guards.
	defaults types.RecordMap
	context  resolved.RecordType
}

func compileSchema() (*compiledSchema, error) {
	var s schema.Schema
	s.SetFilename(SchemaFile)
	if err := s.UnmarshalCedar([]byte(SchemaText())); err != nil {
		return nil, fmt.Errorf("policy schema: %w", err)
	}
	res, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("policy schema: %w", err)
	}
	cs := &compiledSchema{
		validator:      validate.New(res),
		entities:       res.Entities,
		actions:        map[string]*actionInfo{},
		actionEntities: types.EntityMap{},
	}
	for uid, a := range res.Actions {
		cs.actionEntities[uid] = a.Entity
	}
	for uid, a := range res.Actions {
		if a.AppliesTo == nil {
			continue // an action group: never the action of a request
		}
		ai := &actionInfo{
			uid:        uid,
			ancestors:  map[types.EntityUID]bool{},
			principals: map[string]bool{},
			resources:  map[string]bool{},
			defaults:   types.RecordMap{},
			context:    a.AppliesTo.Context,
		}
		collectAncestors(cs.actionEntities, uid, ai.ancestors)
		for _, t := range a.AppliesTo.Principals {
			ai.principals[string(t)] = true
		}
		for _, t := range a.AppliesTo.Resources {
			ai.resources[string(t)] = true
		}
		for name, attr := range a.AppliesTo.Context {
			if v, ok := zeroValue(attr.Type); ok && !attr.Optional {
				ai.defaults[name] = v
			}
		}
		cs.actions[string(uid.ID)] = ai
	}
	return cs, nil
}

func collectAncestors(actions types.EntityMap, uid types.EntityUID, into map[types.EntityUID]bool) {
	for p := range actions[uid].Parents.All() {
		if !into[p] {
			into[p] = true
			collectAncestors(actions, p, into)
		}
	}
}

// zeroValue is the value Gatehouse supplies for a context attribute the engine
// left out. Entity-typed attributes have no sensible zero and get none.
func zeroValue(t resolved.IsType) (types.Value, bool) {
	switch t := t.(type) {
	case resolved.StringType:
		return types.String(""), true
	case resolved.LongType:
		return types.Long(0), true
	case resolved.BoolType:
		return types.False, true
	case resolved.SetType:
		return types.NewSet(), true
	case resolved.RecordType:
		m := types.RecordMap{}
		for name, attr := range t {
			if v, ok := zeroValue(attr.Type); ok && !attr.Optional {
				m[name] = v
			}
		}
		return types.NewRecord(m), true
	}
	return nil, false
}

// descendantTypes returns the principal or resource entity types that can be
// `in` an entity of type t: t itself and every type with t among its ancestors.
func (cs *compiledSchema) descendantTypes(t types.EntityType) map[string]bool {
	out := map[string]bool{string(t): true}
	for changed := true; changed; {
		changed = false
		for name, e := range cs.entities {
			if out[string(name)] {
				continue
			}
			for _, p := range e.ParentTypes {
				if out[string(p)] {
					out[string(name)] = true
					changed = true
					break
				}
			}
		}
	}
	return out
}
