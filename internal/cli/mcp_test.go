package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMCPUsageErrors(t *testing.T) {
	t.Setenv("GATEHOUSE_TOKEN", "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no token", []string{"mcp"}, "GATEHOUSE_TOKEN"},
		{"bad gateway URL", []string{"mcp", "--gateway", "ftp://x", "--token", "t"}, "want the gateway's API URL"},
		{"missing token file", []string{"mcp", "--token-file", filepath.Join(t.TempDir(), "nope")}, "--token-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errb)
			if code != exitBadInput || !strings.Contains(errb.String(), tt.want) || out.Len() != 0 {
				t.Fatalf("exit %d, stderr %q, stdout %q; want exit %d naming %q and nothing on stdout", code, errb.String(), out.String(), exitBadInput, tt.want)
			}
		})
	}
}

func TestMCPEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":              "http://127.0.0.1:8080/mcp",
		"https://gatehouse.example.com/":     "https://gatehouse.example.com/mcp",
		"https://gatehouse.example.com/mcp":  "https://gatehouse.example.com/mcp",
		"https://example.com/gatehouse/api/": "https://example.com/gatehouse/api/mcp",
	} {
		if got, err := mcpEndpoint(in); err != nil || got != want {
			t.Errorf("mcpEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestMCPTokenFileIsReread(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	os.WriteFile(f, []byte("one\n"), 0o600)
	tok, err := tokenSource("", f)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tok(); got != "one" {
		t.Fatalf("token = %q", got)
	}
	os.WriteFile(f, []byte("two"), 0o600)
	if got, _ := tok(); got != "two" {
		t.Fatalf("token after refresh = %q", got)
	}
}
