package identity_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImportBan enforces doc.go: identity is a core package and must not
// depend, even indirectly, on the layers above it.
func TestImportBan(t *testing.T) {
	const module = "github.com/gatehouse-dev/gatehouse/"
	// Top-level internal packages identity may never reach: the layers
	// above core, and core packages that consume identity.
	banned := []string{
		"internal/gateway", "internal/api", "internal/cli", "internal/app",
		"internal/audit", "internal/policy", "internal/engine", "internal/engines",
		"internal/postgres", "internal/mysql", "internal/ssh", "internal/kubernetes",
		"internal/mcp", "internal/http", "cmd",
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %v", deps)
	}
	for _, dep := range deps {
		rel, ok := strings.CutPrefix(dep, module)
		if !ok {
			continue
		}
		for _, b := range banned {
			if rel == b || strings.HasPrefix(rel, b+"/") {
				t.Errorf("identity imports %s, which doc.go forbids", dep)
			}
		}
	}
}
