package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStarterParses(t *testing.T) {
	c, err := Parse([]byte(Starter()), "/etc/gatehouse/gatehouse.yaml")
	if err != nil {
		t.Fatalf("starter config: %v", err)
	}
	if c.DataDir != "/etc/gatehouse/.gatehouse" || c.Policies != "/etc/gatehouse/policies" {
		t.Fatalf("relative paths not resolved against the config's directory: %q %q", c.DataDir, c.Policies)
	}
	if c.Listen.API != "127.0.0.1:8080" || c.Listen.Postgres != "127.0.0.1:15432" || !c.AllowInsecureLoopback {
		t.Fatalf("starter values: %+v", c)
	}
	if c.AuditCheckpointFile() != "/etc/gatehouse/.gatehouse/audit-checkpoints.log" || c.Audit.UnsignedGrace != c.Audit.CheckpointInterval+time.Minute {
		t.Fatalf("audit defaults: file %q, grace %s", c.AuditCheckpointFile(), c.Audit.UnsignedGrace)
	}
}

func TestAuditCheckpointFile(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"audit: {checkpoint_file: off}\n", ""},
		{"audit: {checkpoint_file: cps.log}\n", "/etc/gh/cps.log"},
		{"audit: {checkpoint_file: /var/lib/cps.log}\n", "/var/lib/cps.log"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.yaml), "/etc/gh/gatehouse.yaml")
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if c.AuditCheckpointFile() != tt.want {
			t.Fatalf("%q: file %q, want %q", tt.yaml, c.AuditCheckpointFile(), tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key names its line", "data_dir: x\nlisten:\n  apii: 1.2.3.4:5\n", "line 3"},
		{"bad listen address", "listen: {api: nonsense}\n", "listen.api"},
		{"bad durability", "audit: {durability: maybe}\n", "audit.durability"},
		{"grace shorter than the interval", "audit: {checkpoint_interval: 1m, unsigned_grace: 30s}\n", "audit.unsigned_grace"},
		{"witness not http", "audit: {witness_url: 'ftp://w.example.com/'}\n", "audit.witness_url"},
		{"bad log level", "log: {level: loud}\n", "log.level"},
		{"connection type", "connections: [{name: x, type: oracle, address: 'h:1'}]\n", "not supported"},
		{"duplicate connection", "connections: [{name: x, type: postgres, address: 'h:1'}, {name: x, type: postgres, address: 'h:2'}]\n", "duplicate"},
		{"slash in name", "connections: [{name: a/b, type: postgres, address: 'h:1'}]\n", "name"},
		{"bad tls mode", "connections: [{name: a, type: postgres, address: 'h:1', tls_mode: maybe}]\n", "tls_mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "g.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestSecretResolveNeverLeaks(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	os.WriteFile(f, []byte("s3cret-from-file\n"), 0o600)
	t.Setenv("GH_TEST_PW", "s3cret-from-env")
	tests := []struct {
		name    string
		s       Secret
		want    string
		wantErr bool
	}{
		{"env", "env:GH_TEST_PW", "s3cret-from-env", false},
		{"file strips newline", Secret("file:" + f), "s3cret-from-file", false},
		{"literal", "hunter2", "hunter2", false},
		{"unset env", "env:GH_TEST_NOPE", "", true},
		{"missing file", "file:/nonexistent/pw", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Resolve()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Resolve() = %q, %v", got, err)
			}
			if tt.s.IsLiteral() && strings.Contains(tt.s.String(), string(tt.s)) {
				t.Fatalf("String() reveals a literal secret: %q", tt.s.String())
			}
		})
	}
}

// TestUnresolvedSecrets: every credential reference that resolves to
// nothing is named by its key, so `up` and `gateway` can warn at start
// (issue 12: an unset env:PG_PASSWORD showed up only as a vague FATAL).
func TestUnresolvedSecrets(t *testing.T) {
	t.Setenv("GH_CFG_SET", "value")
	t.Setenv("GH_CFG_EMPTY", "")
	empty := t.TempDir() + "/empty"
	os.WriteFile(empty, nil, 0o600)
	yaml := `
connections:
  - {name: ok, type: postgres, address: 127.0.0.1:5432, user: u, password: env:GH_CFG_SET}
  - {name: unset, type: postgres, address: 127.0.0.1:5432, user: u, password: env:GH_CFG_NEVER_SET}
  - {name: blank, type: postgres, address: 127.0.0.1:5432, user: u, password: env:GH_CFG_EMPTY}
  - {name: nofile, type: postgres, address: 127.0.0.1:5432, user: u, password: "file:` + empty + `"}
approvals:
  webhooks: [{url: "https://example.com/hook", secret: env:GH_CFG_NEVER_SET}]
masking: {key: env:GH_CFG_SET}
`
	c, err := Parse([]byte(yaml), "g.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.UnresolvedSecrets() {
		got = append(got, p.Key)
		if strings.Contains(p.Err.Error(), "value") {
			t.Fatalf("%s: error carries a value: %v", p.Key, p.Err)
		}
	}
	want := []string{"connections[unset].password", "connections[blank].password", "connections[nofile].password", "approvals.webhooks[0].secret"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("unresolved = %v, want %v", got, want)
	}
}

// TestStarterExampleUncomments: deleting "# " from the starter's example
// connection, as its comment says, gives a config with that connection.
// Issue 12: the example sat under "connections: []", and uncommenting it
// gave "yaml: line 5: did not find expected key".
func TestStarterExampleUncomments(t *testing.T) {
	var b strings.Builder
	in := false
	for _, line := range strings.SplitAfter(Starter(), "\n") {
		if strings.HasPrefix(line, "connections:") {
			in = true
		} else if in && strings.HasPrefix(line, "  # ") {
			line = "  " + strings.TrimPrefix(line, "  # ")
		}
		b.WriteString(line)
	}
	c, err := Parse([]byte(b.String()), "/etc/gatehouse/gatehouse.yaml")
	if err != nil {
		t.Fatalf("uncommented starter: %v\n%s", err, b.String())
	}
	if len(c.Connections) != 1 || c.Connections[0].Name != "pg" || c.Connections[0].Password != "env:PG_PASSWORD" {
		t.Fatalf("connections = %+v", c.Connections)
	}
}

// TestUnknownKeyNamesYAML: a mistyped key is reported by its YAML name and
// line with the nearest known key, not by Go types ("field typ not found in
// type config.Connection").
func TestUnknownKeyNamesYAML(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"connections:\n  - name: pg\n    typ: postgres\n", `line 3: unknown key "typ"; did you mean "type"?`},
		{"audit: {durabilty: group}\n", `line 1: unknown key "durabilty"; did you mean "durability"?`},
		{"lisen: {api: 127.0.0.1:1}\n", `line 1: unknown key "lisen"; did you mean "listen"?`},
		{"masking: {zzz: 1}\n", `line 1: unknown key "zzz" (keys here: enabled, rules, key)`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml), "g.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "config.") {
			t.Errorf("%q: %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
