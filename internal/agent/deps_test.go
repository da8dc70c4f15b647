package agent_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "agent", append(testenv.AboveCore, "tunnel", "audit", "policy")...)
}
