package metrics_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "metrics", append(testenv.AboveCore, "audit", "identity", "policy", "config", "mask")...)
}
