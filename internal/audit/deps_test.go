package audit_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "audit", append(testenv.AboveCore, "identity", "policy", "config", "mask")...)
}
