package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMask(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newMaskCmd()
	var out, errb bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

func TestMaskCommand(t *testing.T) {
	in := "user jane.doe@example.com paid with 4111 1111 1111 1111 from 10.0.0.1\n"
	out, _, err := runMask(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "user [REDACTED:EMAIL] paid with [REDACTED:CARD] from [REDACTED:IPV4]\n"; out != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
}

func TestMaskCommandJSON(t *testing.T) {
	in := "user jane.doe@example.com paid with 4111 1111 1111 1111\n"
	out, _, err := runMask(t, in, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got []jsonFinding
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var f jsonFinding
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, f)
	}
	want := []jsonFinding{{"email", 5, 20}, {"card", 36, 19}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestMaskCommandRules(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("detectors: {default: redact, card: partial, email: token}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(maskKeyEnv, "cli-test-key-0123456789")
	out, stderr, err := runMask(t, "4111 1111 1111 1111 jane@example.com", "--rules", rules)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "**** **** **** 1111 ") || !strings.HasSuffix(out, ".invalid") || stderr != "" {
		t.Errorf("stdout %q stderr %q", out, stderr)
	}
	again, _, _ := runMask(t, "jane@example.com", "--rules", rules)
	if !strings.HasSuffix(out, again) {
		t.Errorf("tokens differ between runs with one key: %q and %q", out, again)
	}
}

func TestMaskCommandBadRules(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("detectors: {card: hide}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runMask(t, "x", "--rules", rules); err == nil || !strings.Contains(err.Error(), "hide") {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := runMask(t, "x", "--rules", filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing rules file accepted")
	}
}

func TestMaskCommandTokenWithoutKey(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("detectors: {default: token}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(maskKeyEnv, "")
	out, stderr, err := runMask(t, "10.0.0.1", "--rules", rules)
	if err != nil || out == "10.0.0.1" || !strings.Contains(stderr, maskKeyEnv) {
		t.Fatalf("out %q stderr %q err %v", out, stderr, err)
	}
}

func TestMaskCommandLargeInput(t *testing.T) {
	var in strings.Builder
	for in.Len() < 3<<20 {
		in.WriteString("order 1042 shipped to jane@example.com via 10.0.0.1 at 2024-03-12T10:11:12Z\n")
	}
	out, _, err := runMask(t, in.String())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "jane@example.com") || strings.Count(out, "[REDACTED:EMAIL]") != strings.Count(in.String(), "jane@") {
		t.Fatal("large input not fully masked")
	}
}
