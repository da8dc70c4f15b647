package mask

import "testing"

const columnRules = `
detectors:
  default: redact
  email: {strategy: redact, clear_for: [support]}
columns:
  - column: "billing/public.cards.pan"
    strategy: partial
    detector: card
  - column: "*.users.email"
    strategy: token
    detector: email
    clear_for: [support]
  - column: "*.*.password*"
    strategy: null
  - column: "analytics/*.*.*"
    strategy: clear
  - column: "notes"
    strategy: redact
clear_text: ["user:root", "dba"]
`

func TestColumnRules(t *testing.T) {
	m := maskerWith(t, columnRules)
	tests := []struct {
		name     string
		who      *Principal
		ref      ColumnRef
		in       string
		want     string
		wantNull bool
		pass     bool
	}{
		{name: "partial card", ref: ColumnRef{"billing", "public", "cards", "pan"}, in: "4111111111111111", want: "************1111"},
		{name: "case-insensitive", ref: ColumnRef{"Billing", "PUBLIC", "Cards", "PAN"}, in: "4111111111111111", want: "************1111"},
		{name: "other connection scans", ref: ColumnRef{"shop", "public", "cards", "pan"}, in: "4111111111111111", want: "[REDACTED:CARD]"},
		{name: "glob password null", ref: ColumnRef{"x", "auth", "accounts", "password_hash"}, in: "$2b$10$abc", wantNull: true},
		{name: "clear connection", ref: ColumnRef{"analytics", "s", "t", "email"}, in: "a@b.co", want: "a@b.co", pass: true},
		{name: "bare column name", ref: ColumnRef{"c", "s", "t", "notes"}, in: "anything at all", want: "[REDACTED]"},
		{name: "unmatched column is scanned", ref: ColumnRef{"c", "s", "orders", "comment"}, in: "call 415-555-2671", want: "call [REDACTED:PHONE]"},
		{name: "clear_for on column", who: &Principal{ID: "user:ann", Groups: []string{"support"}},
			ref: ColumnRef{"c", "s", "users", "email"}, in: "a@b.co", want: "a@b.co", pass: true},
		{name: "clear_for on detector while scanning", who: &Principal{ID: "user:ann", Groups: []string{"support"}},
			ref: ColumnRef{"c", "s", "orders", "comment"}, in: "a@b.co 10.0.0.1", want: "a@b.co [REDACTED:IPV4]"},
		{name: "clear_text group", who: &Principal{ID: "user:bob", Groups: []string{"dba"}},
			ref: ColumnRef{"c", "s", "t", "notes"}, in: "x", want: "x", pass: true},
		{name: "policy allows clear text", who: &Principal{ID: "agent:bot", ClearText: true},
			ref: ColumnRef{"billing", "public", "cards", "pan"}, in: "4111111111111111", want: "4111111111111111", pass: true},
		{name: "other principal still masked", who: &Principal{ID: "agent:bot"},
			ref: ColumnRef{"c", "s", "users", "email"}, in: "a@b.co", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mm := m
			if tc.who != nil {
				mm = m.For(*tc.who)
			}
			r := mm.Column(tc.ref)
			out, null := r.Apply(nil, []byte(tc.in))
			if null != tc.wantNull {
				t.Fatalf("null = %v, want %v", null, tc.wantNull)
			}
			if tc.want != "" && string(out) != tc.want {
				t.Errorf("Apply(%q) = %q, want %q", tc.in, out, tc.want)
			}
			if tc.want == "" && !tc.wantNull && string(out) == tc.in {
				t.Errorf("Apply(%q) left the value clear", tc.in)
			}
			if r.Passthrough() != tc.pass {
				t.Errorf("Passthrough = %v, want %v", r.Passthrough(), tc.pass)
			}
		})
	}
}

func TestForDoesNotChangeBase(t *testing.T) {
	m := maskerWith(t, columnRules)
	_ = m.For(Principal{ID: "user:root"})
	if got := string(m.Mask(nil, []byte("a@b.co"))); got != "[REDACTED:EMAIL]" {
		t.Errorf("base masker changed: %q", got)
	}
}

func TestZeroColumnRule(t *testing.T) {
	var r ColumnRule
	out, null := r.Apply(nil, []byte("x"))
	if string(out) != "x" || null || !r.Passthrough() {
		t.Errorf("zero ColumnRule: %q %v %v", out, null, r.Passthrough())
	}
}

// Column rules alone, with every detector off, still mask: MasksNothing
// must not let an engine skip them.
func TestColumnRulesWithoutDetectors(t *testing.T) {
	m := maskerWith(t, `
detectors: {default: off}
columns: [{column: "users.ssn", strategy: redact}]
`)
	if m.MasksNothing() {
		t.Fatal("MasksNothing with a redacting column rule")
	}
	out, _ := m.Column(ColumnRef{"c", "s", "users", "ssn"}).Apply(nil, []byte("123-45-6789"))
	if string(out) != "[REDACTED]" {
		t.Errorf("got %q", out)
	}
	if !m.Column(ColumnRef{"c", "s", "users", "name"}).Passthrough() {
		t.Error("an unmatched column should pass through when no detector is on")
	}
	if !m.For(Principal{ClearText: true}).MasksNothing() {
		t.Error("a clear-text view masks something")
	}
	if !maskerWith(t, "detectors: {default: clear}").MasksNothing() {
		t.Error("all-clear rules mask something")
	}
}
