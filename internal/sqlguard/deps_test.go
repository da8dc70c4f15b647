package sqlguard

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImportBan enforces doc.go: sqlguard is a core package that imports no
// other Gatehouse package, directly or indirectly.
func TestImportBan(t *testing.T) {
	const module = "github.com/gatehouse-dev/gatehouse/"
	const self = module + "internal/sqlguard"
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != self {
		t.Fatalf("go list -deps did not list this package last:\n%s", out)
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, module) && dep != self {
			t.Errorf("sqlguard depends on %s; doc.go allows no Gatehouse package", dep)
		}
	}
}
