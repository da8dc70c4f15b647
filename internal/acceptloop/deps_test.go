package acceptloop_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "acceptloop", append(testenv.AboveCore,
		"agent", "approval", "audit", "certs", "config", "identity", "mask", "metrics", "policy", "recording", "sqlguard", "store", "tunnel")...)
}
