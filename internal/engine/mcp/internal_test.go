package mcp

import (
	"encoding/json"
	"testing"
)

func TestApprovalID(t *testing.T) {
	tests := []struct {
		msg, want string
		ok        bool
	}{
		{`gatehouse: approval required: apr_0123 (policy "p", reviewers "dba", 1 needed); waiting up to 10m0s`, "apr_0123", true},
		{"gatehouse: approval required: apr_9.", "apr_9", true},
		{"gatehouse: approval required: ", "", false},
		{"some other notice", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			got, ok := approvalID(tt.msg)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("approvalID = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestJSONValue(t *testing.T) {
	tests := []struct {
		name string
		oid  uint32
		in   []byte
		want string // JSON
	}{
		{"null", oidInt4, nil, `null`},
		{"int", oidInt4, []byte("42"), `42`},
		{"negative numeric", oidNumeric, []byte("-12.50"), `-12.50`},
		{"NaN stays text", oidNumeric, []byte("NaN"), `"NaN"`},
		{"infinity stays text", oidFloat8, []byte("Infinity"), `"Infinity"`},
		{"masked number stays text", oidInt8, []byte("[REDACTED]"), `"[REDACTED]"`},
		{"bool", oidBool, []byte("t"), `true`},
		{"jsonb", oidJSONB, []byte(`{"a": [1]}`), `{"a":[1]}`},
		{"broken json stays text", oidJSON, []byte(`{"a": [REDACTED`), `"{\"a\": [REDACTED"`},
		{"text", 25, []byte("hello"), `"hello"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(jsonValue(tt.oid, tt.in))
			if err != nil || string(b) != tt.want {
				t.Fatalf("jsonValue = %s, %v; want %s", b, err, tt.want)
			}
		})
	}
}

func TestResultText(t *testing.T) {
	out := &QueryOutput{Columns: []Column{{Name: "id"}, {Name: "note"}}, Rows: [][]any{{json.Number("1"), "a\nb"}, {json.Number("22"), nil}}}
	want := "id | note\n---+-----\n1  | a\\nb\n22 | NULL\n(2 rows)\n"
	if got := resultText(out); got != want {
		t.Fatalf("resultText =\n%q\nwant\n%q", got, want)
	}
}
