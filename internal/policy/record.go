package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
)

// recordValue converts an engine's map (a Cedar Record in the context, such
// as an MCP call's arguments) value by value.
func recordValue(m map[string]any) (types.Value, error) {
	rm := make(types.RecordMap, len(m))
	for k, v := range m {
		cv, err := toValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		rm[types.String(k)] = cv
	}
	return types.NewRecord(rm), nil
}

// completeRecord checks a record-typed context value against its schema
// type and fills the attributes it leaves out with their zero value, so a
// policy reads context.arguments.sql without a `has` guard, as it does the
// top-level attributes. Values of other types are returned as they are.
func completeRecord(v types.Value, t resolved.IsType) (types.Value, error) {
	rt, ok := t.(resolved.RecordType)
	if !ok {
		return v, nil
	}
	rec, ok := v.(types.Record)
	if !ok {
		return nil, fmt.Errorf("must be a Record, got %s", v.MarshalCedar())
	}
	out := make(types.RecordMap, len(rt))
	for k, fv := range rec.All() {
		attr, ok := rt[k]
		if !ok {
			known := make([]string, 0, len(rt))
			for name := range rt {
				known = append(known, string(name))
			}
			slices.Sort(known)
			return nil, fmt.Errorf("has no attribute %q (it has %s)", k, strings.Join(known, ", "))
		}
		fv, err := completeRecord(fv, attr.Type)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		if !hasType(fv, attr.Type) {
			return nil, fmt.Errorf("attribute %q must be %s, got %s", k, typeName(attr.Type), fv.MarshalCedar())
		}
		out[k] = fv
	}
	for name, attr := range rt {
		if _, ok := out[name]; ok || attr.Optional {
			continue
		}
		if z, ok := zeroValue(attr.Type); ok {
			out[name] = z
		}
	}
	return types.NewRecord(out), nil
}
