package tunnel_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "tunnel", append(testenv.AboveCore, "audit", "policy", "mask", "recording")...)
}
