package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is the Gatehouse module path.
const Module = "github.com/gatehouse-dev/gatehouse"

// ForbidImports fails the test when pkg (a path below internal/, such as
// "audit") depends, directly or not, on any of the forbidden packages
// (paths below internal/). It is how a package's doc.go rule on what it must
// not import is enforced.
func ForbidImports(t *testing.T, pkg string, forbidden ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", Module+"/internal/"+pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			p := Module + "/internal/" + f
			if dep == p || strings.HasPrefix(dep, p+"/") {
				t.Errorf("%s imports %s, which its doc.go forbids", pkg, dep)
			}
		}
	}
}

// AboveCore lists the packages no core package may import.
var AboveCore = []string{"app", "cli", "api", "admin", "gateway", "engine"}
