package recording_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "recording", append(testenv.AboveCore, "audit", "identity", "policy", "config")...)
}
