package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// writeDir writes files (name → contents) into a fresh directory.
func writeDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// agent is a request principal with the given scopes, scoped to connection "pg".
func agent(scopes ...string) Principal {
	return Principal{Type: Agent, ID: "a", Scopes: scopes, Connections: []string{"pg"}, OnBehalfOf: "alice"}
}

func usersTable() Resource {
	return Resource{Type: Table, ID: "pg/public.users", Connection: "pg"}
}

func ids(d Decision) []string {
	var out []string
	for _, p := range d.Policies {
		out = append(out, p.ID)
	}
	return out
}
