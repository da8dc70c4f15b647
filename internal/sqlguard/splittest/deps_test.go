package splittest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImportBan enforces doc.go: no Gatehouse package, so that a core
// package's tests can import this one without a cycle.
func TestImportBan(t *testing.T) {
	const module = "github.com/gatehouse-dev/gatehouse/"
	const self = module + "internal/sqlguard/splittest"
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, module) && dep != self {
			t.Errorf("splittest depends on %s; doc.go allows no Gatehouse package", dep)
		}
	}
}
