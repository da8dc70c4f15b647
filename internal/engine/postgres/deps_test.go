package postgres_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "engine/postgres", "engine/mcp", "api", "cli", "app", "admin")
}
