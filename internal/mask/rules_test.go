package mask

import (
	"slices"
	"strings"
	"testing"
)

func TestDefaultRules(t *testing.T) {
	m := defaultMasker(t)
	for _, d := range Builtin() {
		if got := m.Strategy(d); got != Redact {
			t.Errorf("%s: strategy %s, want redact", d, got)
		}
	}
}

func TestParseRules(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		key     []byte
		wantErr string
		check   func(t *testing.T, m *Masker)
	}{
		{name: "empty file masks nothing", yaml: "", check: func(t *testing.T, m *Masker) {
			if got := found(m, "jane@example.com"); got != nil {
				t.Errorf("found %q", got)
			}
		}},
		{name: "short and long forms", yaml: `
detectors:
  default: redact
  card: partial
  email: {strategy: token, clear_for: [support]}
  ipv4: off
  ssn: null
`, key: testKey, check: func(t *testing.T, m *Masker) {
			want := map[Detector]Strategy{Card: Partial, Email: Token, IPv4: off, SSN: Null, Phone: Redact}
			for d, st := range want {
				if got := m.Strategy(d); got != st {
					t.Errorf("%s: %s, want %s", d, got, st)
				}
			}
		}},
		{name: "custom detector", yaml: `
custom:
  - name: employee_id
    pattern: '\bEMP-(?P<value>[0-9]{6})\b'
    strategy: partial
  - name: account
    pattern: '\bACCT [0-9]{16}\b'
    validator: luhn
`, check: func(t *testing.T, m *Masker) {
			got := found(m, "EMP-123456 ACCT 4111111111111111 ACCT 4111111111111112")
			want := []string{"employee_id:123456", "account:ACCT 4111111111111111"}
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
			if out := string(m.Mask(nil, []byte("EMP-123456 ACCT 4111111111111111"))); out != "EMP-****** [REDACTED:ACCOUNT]" {
				t.Errorf("Mask = %q", out)
			}
		}},
		{name: "custom beats built-in on a tie", yaml: `
detectors: {default: redact}
custom: [{name: test_card, pattern: '4111111111111111'}]
`, check: func(t *testing.T, m *Masker) {
			if got := found(m, "x 4111111111111111 10.0.0.1"); !slices.Equal(got, []string{"test_card:4111111111111111", "ipv4:10.0.0.1"}) {
				t.Errorf("got %q", got)
			}
		}},
		{name: "unknown key", yaml: "detector: {default: redact}", wantErr: "field detector not found"},
		{name: "unknown detector", yaml: "detectors: {cards: redact}", wantErr: `unknown detector "cards"`},
		{name: "unknown strategy", yaml: "detectors: {card: hide}", wantErr: `unknown strategy "hide"`},
		{name: "token needs key", yaml: "detectors: {card: token}", wantErr: "deployment key"},
		{name: "short key", yaml: "detectors: {card: token}", key: []byte("short"), wantErr: "deployment key"},
		{name: "bad pattern", yaml: "custom: [{name: x, pattern: '('}]", wantErr: "pattern"},
		{name: "empty pattern", yaml: "custom: [{name: x, pattern: 'a*'}]", wantErr: "empty string"},
		{name: "builtin name", yaml: "custom: [{name: email, pattern: 'x'}]", wantErr: "built-in"},
		{name: "duplicate name", yaml: "custom: [{name: x, pattern: 'a'}, {name: x, pattern: 'b'}]", wantErr: "twice"},
		{name: "unknown validator", yaml: "custom: [{name: x, pattern: 'a', validator: crc}]", wantErr: "validator"},
		{name: "bad column", yaml: "columns: [{column: 'a.b.c.d', strategy: redact}]", wantErr: "connection/schema.table.column"},
		{name: "bad column glob", yaml: "columns: [{column: 'users.[', strategy: redact}]", wantErr: "bad pattern"},
		{name: "column off", yaml: "columns: [{column: 'users.email', strategy: off}]", wantErr: "unknown strategy"},
		{name: "version", yaml: "version: 2", wantErr: "version"},
		{name: "negative bound", yaml: "max_replacement: -1", wantErr: "max_replacement"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRules([]byte(tc.yaml))
			var m *Masker
			if err == nil {
				m, err = New(r, tc.key)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, m)
		})
	}
}

func TestErrorsDoNotLeakKey(t *testing.T) {
	key := []byte("super-secret-k")
	_, err := New(&Rules{Detectors: map[string]DetectorRule{"card": {Strategy: "token"}}}, key)
	if err == nil || strings.Contains(err.Error(), string(key)) {
		t.Fatalf("err = %v", err)
	}
}
