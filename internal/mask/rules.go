package mask

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// Rules is the YAML rule file. The zero value (or an empty file) masks
// nothing; DefaultRules redacts every built-in detector.
type Rules struct {
	Version int `yaml:"version"`
	// MaxReplacement bounds replacements: a masked value is never longer
	// than max(len(value), MaxReplacement) bytes. 0 means 32.
	MaxReplacement int `yaml:"max_replacement"`
	// Detectors maps a built-in detector name, or "default" for all not
	// named, to its strategy.
	Detectors map[string]DetectorRule `yaml:"detectors"`
	Custom    []CustomRule            `yaml:"custom"`
	Columns   []ColumnSpec            `yaml:"columns"`
	// ClearText lists principal ids and group names that see every value
	// in clear text.
	ClearText []string `yaml:"clear_text"`
}

// DetectorRule is a detector's strategy and who sees its values in clear.
// In YAML it is either a bare strategy ("card: partial") or a mapping.
type DetectorRule struct {
	Strategy string   `yaml:"strategy"`
	ClearFor []string `yaml:"clear_for"`
}

// UnmarshalYAML accepts the scalar short form.
func (r *DetectorRule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		r.Strategy = n.Value
		return nil
	}
	type plain DetectorRule
	return n.Decode((*plain)(r))
}

// CustomRule is a detector defined by an RE2 pattern. When the pattern has
// a group named "value", only that group is masked. Validator, when set,
// must accept the matched value: luhn, card, iban, ssn, ipv4 or ipv6.
type CustomRule struct {
	Name      string   `yaml:"name"`
	Pattern   string   `yaml:"pattern"`
	Validator string   `yaml:"validator"`
	Strategy  string   `yaml:"strategy"`
	ClearFor  []string `yaml:"clear_for"`
}

// ColumnSpec masks whole column values. Column is
// "connection/schema.table.column"; shorter forms leave the leading parts
// as "*" ("table.column", "schema.table.column"). Each part is a glob
// (path.Match syntax), compared case-insensitively. The first matching
// spec wins; columns no spec matches are scanned with the detectors.
type ColumnSpec struct {
	Column string `yaml:"column"`
	// Strategy is scan (look for values inside, the default), redact,
	// partial, token, null or clear.
	Strategy string `yaml:"strategy"`
	// Detector names the kind of value the column holds, so partial and
	// token keep its format and redact labels it. Optional.
	Detector string   `yaml:"detector"`
	ClearFor []string `yaml:"clear_for"`
}

// ParseRules reads a YAML rule file. Unknown keys are errors, so a typo
// does not silently leave data unmasked.
func ParseRules(data []byte) (*Rules, error) {
	var r Rules
	if err := decodeStrict(data, &r); err != nil {
		return nil, err // reported against the file as written
	}
	// YAML reads a bare null as "no value"; here it names the Null
	// strategy, so rewrite it and decode again.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("mask rules: %w", err)
	}
	if doc.Kind != 0 {
		nullStrategies(&doc, false)
		norm, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, fmt.Errorf("mask rules: %w", err)
		}
		r = Rules{}
		if err := decodeStrict(norm, &r); err != nil {
			return nil, err
		}
	}
	if r.Version != 0 && r.Version != 1 {
		return nil, fmt.Errorf("mask rules: unsupported version %d", r.Version)
	}
	return &r, nil
}

func decodeStrict(data []byte, r *Rules) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(r); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("mask rules: %w", err)
	}
	return nil
}

// nullStrategies turns null scalars that stand for a strategy ("strategy:
// null", "email: null" under detectors) into the string "null".
func nullStrategies(n *yaml.Node, inDetectors bool) {
	if n.Kind == yaml.MappingNode {
		for k := 0; k+1 < len(n.Content); k += 2 {
			key, v := n.Content[k], n.Content[k+1]
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" && (inDetectors || key.Value == "strategy") {
				v.Tag, v.Value = "!!str", "null"
			}
			nullStrategies(v, key.Value == "detectors" && !inDetectors)
		}
		return
	}
	for _, c := range n.Content {
		nullStrategies(c, false)
	}
}

// DefaultRulesYAML is the starter rule file: every built-in detector
// redacts, for every principal. Engines use it when no rules are configured.
const DefaultRulesYAML = `# Gatehouse masking rules (see docs/masking.md).
version: 1

# A replacement is never longer than max(len(value), max_replacement) bytes.
max_replacement: 32

# Strategy per built-in detector: redact, partial, token, null, clear or off.
# "default" covers every detector not named.
detectors:
  default: redact
  # card: partial            # keep the last four digits
  # email: {strategy: token, clear_for: [support]}

# Detectors of your own: an RE2 pattern and an optional validator.
custom: []
#  - name: employee_id
#    pattern: '\bEMP-[0-9]{6}\b'
#    strategy: token

# Whole-column rules: connection/schema.table.column, globs allowed.
columns: []
#  - column: "billing/public.cards.pan"
#    strategy: partial
#    detector: card
#  - column: "*.users.password_hash"
#    strategy: null

# Principal ids or group names that see clear text everywhere.
clear_text: []
`

// DefaultRules returns a fresh copy of the rules in DefaultRulesYAML.
func DefaultRules() *Rules {
	r, err := ParseRules([]byte(DefaultRulesYAML))
	if err != nil {
		panic("mask: default rules: " + err.Error())
	}
	return r
}
