package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key is one YAML key of a config file: its dotted path (a list's items
// as "connections[].name") and the Go type that holds it.
type Key struct {
	Path string
	Kind reflect.Kind
}

var durationType = reflect.TypeOf(time.Duration(0))

// Keys lists every key of gatehouse.yaml, from the Config struct's yaml
// tags, so documentation can be checked against it (TestEveryKeyDocumented).
func Keys() []Key { return keysOf(reflect.TypeOf(Config{})) }

// AgentKeys lists every key of agent.yaml.
func AgentKeys() []Key { return keysOf(reflect.TypeOf(AgentConfig{})) }

func keysOf(t reflect.Type) []Key {
	var out []Key
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for _, f := range reflect.VisibleFields(t) {
			name, ok := yamlName(f)
			if !ok {
				continue
			}
			path := prefix + name
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			out = append(out, Key{Path: path, Kind: ft.Kind()})
			switch {
			case ft.Kind() == reflect.Struct && ft != durationType:
				walk(path+".", ft)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(path+"[].", ft.Elem())
			}
		}
	}
	walk("", t)
	return out
}

// yamlName is a struct field's YAML key, if it has one.
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" || name == "" {
		return "", false
	}
	return name, true
}

// unknownField is yaml.v3's KnownFields error for one key.
var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type (\S+)`)

// explainUnknownKeys rewrites yaml.v3's "field typ not found in type
// config.Connection" (Go names, no hint) as the YAML key, its line, and
// the nearest known key of that place.
func explainUnknownKeys(err error, root reflect.Type) error {
	msg := err.Error()
	if !unknownField.MatchString(msg) {
		return err
	}
	types := structTypes(root)
	var lines []string
	for _, m := range unknownField.FindAllStringSubmatch(msg, -1) {
		line, key, typ := m[1], m[2], m[3]
		t, ok := types[typ]
		if !ok {
			lines = append(lines, fmt.Sprintf("line %s: unknown key %q", line, key))
			continue
		}
		var known []string
		for _, f := range reflect.VisibleFields(t) {
			if name, ok := yamlName(f); ok {
				known = append(known, name)
			}
		}
		s := fmt.Sprintf("line %s: unknown key %q", line, key)
		if near := nearest(key, known); near != "" {
			s += fmt.Sprintf("; did you mean %q?", near)
		}
		s += " (keys here: " + strings.Join(known, ", ") + ")"
		lines = append(lines, s)
	}
	if len(lines) == 1 {
		return fmt.Errorf("%s", lines[0])
	}
	return fmt.Errorf("unknown keys:\n  %s", strings.Join(lines, "\n  "))
}

// structTypes maps the Go names yaml.v3 prints ("config.Connection") to
// the struct types reachable from root.
func structTypes(root reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType {
			return
		}
		if _, seen := out[t.String()]; seen {
			return
		}
		out[t.String()] = t
		for _, f := range reflect.VisibleFields(t) {
			if f.IsExported() {
				walk(f.Type)
			}
		}
	}
	walk(root)
	return out
}

// nearest is the known key closest to key by edit distance, if it is close
// enough to be a typo (at most a third of the key's length, at least 2).
func nearest(key string, known []string) string {
	best, bestD := "", len(key)/3
	bestD = max(bestD, 2)
	for _, k := range known {
		if d := editDistance(key, k); d <= bestD && (best == "" || d < editDistance(key, best)) {
			best = k
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = slices.Min([]int{prev[j] + 1, cur[j-1] + 1, prev[j-1] + cost})
		}
		prev = cur
	}
	return prev[len(b)]
}

// syntaxHint follows a YAML syntax error: yaml.v3 reports where the parser
// noticed the problem, often well after the line at fault.
func syntaxHint(err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "yaml: line ") || unknownField.MatchString(msg) {
		return err
	}
	if n, _, ok := strings.Cut(strings.TrimPrefix(msg, "yaml: line "), ":"); ok {
		if _, convErr := strconv.Atoi(n); convErr == nil {
			return fmt.Errorf("%w (YAML reports the line where it noticed the problem; the mistake is often on an earlier line: check the indentation of the lines above it, and that an uncommented block lost only its leading '# ')", err)
		}
	}
	return err
}
