package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// forbiddenImports are the Gatehouse packages (and their subpackages) that
// doc.go forbids: every layer above core, and identity and audit.
var forbiddenImports = []string{
	"internal/engine", "internal/engines",
	"internal/postgres", "internal/mysql", "internal/ssh", "internal/http",
	"internal/kubernetes", "internal/mcp",
	"internal/gateway", "internal/api", "internal/cli", "internal/app",
	"internal/identity", "internal/audit", "cmd",
}

func forbiddenImport(rel string) bool {
	for _, f := range forbiddenImports {
		if rel == f || strings.HasPrefix(rel, f+"/") {
			return true
		}
	}
	return false
}

// TestImports enforces doc.go: policy is a core package and must not depend
// on the layers above it.
func TestImports(t *testing.T) {
	const module = "github.com/gatehouse-dev/gatehouse/"
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != module+"internal/policy" {
		t.Fatalf("go list -deps did not list this package last:\n%s", out)
	}
	for _, dep := range deps {
		if rel, ok := strings.CutPrefix(dep, module); ok && forbiddenImport(rel) {
			t.Errorf("policy depends on %s, which doc.go forbids", dep)
		}
	}
}

func TestForbiddenImport(t *testing.T) {
	tests := []struct {
		rel  string
		want bool
	}{
		{"internal/gateway", true},
		{"internal/engines/postgres", true},
		{"internal/audit/merkle", true},
		{"internal/app", true},
		{"cmd/gatehouse", true},
		{"internal/approval", false}, // core, despite sharing a prefix with app
		{"internal/store", false},
		{"internal/policy", false},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			if got := forbiddenImport(tt.rel); got != tt.want {
				t.Errorf("forbiddenImport(%q) = %v, want %v", tt.rel, got, tt.want)
			}
		})
	}
}
