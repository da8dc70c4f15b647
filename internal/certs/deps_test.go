package certs_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "certs", append(testenv.AboveCore, "store", "audit", "identity", "policy", "config")...)
}
