package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	const readPolicy = `// A comment before the policy.
@id("read")
@reason("reads are fine")
permit (principal is Agent, action == Action::"sql:select", resource)
when { principal.scopes.contains("read") };
`
	tests := []struct {
		name    string
		files   map[string]string
		wantIDs []string
		// wantErr lists substrings the error must contain, in order of lines;
		// empty means the load must succeed.
		wantErr []string
	}{
		{
			name:    "good dir",
			files:   map[string]string{"a.cedar": readPolicy, "b.cedar": "\n\nforbid (principal, action, resource in Connection::\"prod\");\n"},
			wantIDs: []string{"read", "b.cedar:3"},
		},
		{
			name:    "empty dir",
			files:   map[string]string{},
			wantIDs: nil,
		},
		{
			name:    "comments only",
			files:   map[string]string{"a.cedar": "// nothing yet\n"},
			wantIDs: nil,
		},
		{
			name: "other files ignored",
			files: map[string]string{
				"a.cedar":               readPolicy,
				"README.md":             "not cedar",
				"gatehouse.cedarschema": "not a policy",
				".#a.cedar":             "an editor's lock file",
				"a.cedar~":              "a backup",
			},
			wantIDs: []string{"read"},
		},
		{
			name:    "two policies on one line get distinct ids",
			files:   map[string]string{"a.cedar": `permit (principal, action, resource); forbid (principal, action, resource);`},
			wantIDs: []string{"a.cedar:1", "a.cedar:1:39"},
		},
		{
			name:    "bad syntax names file and line",
			files:   map[string]string{"good.cedar": readPolicy, "bad.cedar": "permit (principal, action, resource)\nwhen { true }\n\nforbid"},
			wantErr: []string{`bad.cedar:4:1: syntax error: expected ";", found "forbid"`},
		},
		{
			name:    "unterminated string",
			files:   map[string]string{"bad.cedar": "\npermit (principal, action, resource) when { \"abc };"},
			wantErr: []string{`bad.cedar:2:`, `syntax error: literal not terminated`},
		},
		{
			name:    "unknown action",
			files:   map[string]string{"bad.cedar": "\n@id(\"x\")\npermit (principal, action == Action::\"sql:selekt\", resource);"},
			wantErr: []string{`bad.cedar:2:1: policy "x": `, "sql:selekt"},
		},
		{
			name:    "principal attribute typo",
			files:   map[string]string{"bad.cedar": `permit (principal is Agent, action == Action::"sql:select", resource) when { principal.scope.contains("read") };`},
			wantErr: []string{`bad.cedar:1:1: policy "bad.cedar:1": attribute ` + "`scope`" + ` on entity type ` + "`Agent`" + ` not found`},
		},
		{
			name:    "context attribute typo",
			files:   map[string]string{"bad.cedar": `permit (principal, action in Action::"sql", resource) when { context.flag.contains("drop") };`},
			wantErr: []string{"attribute `flag` in context for Action::", "(and for 16 other actions)"},
		},
		{
			name:    "context attribute of another protocol",
			files:   map[string]string{"bad.cedar": `permit (principal, action == Action::"sql:select", resource) when { context.verb == "get" };`},
			wantErr: []string{"attribute `verb` in context"},
		},
		{
			name:    "optional attribute without has",
			files:   map[string]string{"bad.cedar": `permit (principal is Agent, action, resource) when { principal.on_behalf_of == "alice" };`},
			wantErr: []string{"optional attribute `on_behalf_of`"},
		},
		{
			name:    "resource type the action does not take",
			files:   map[string]string{"bad.cedar": `permit (principal, action == Action::"ssh:exec", resource is Table);`},
			wantErr: []string{"bad.cedar:1:1:", "applicable action"},
		},
		{
			name: "duplicate id across files",
			files: map[string]string{
				"a.cedar": readPolicy,
				"b.cedar": "\n" + readPolicy,
			},
			wantErr: []string{`b.cedar:3:1: policy "read": duplicate policy id, first defined at `, `a.cedar:2:1`},
		},
		{
			name:    "explicit id that collides with a generated one",
			files:   map[string]string{"a.cedar": "permit (principal, action, resource);\n@id(\"a.cedar:1\")\nforbid (principal, action, resource);"},
			wantErr: []string{`duplicate policy id`},
		},
		{
			name:    "empty id",
			files:   map[string]string{"a.cedar": `@id("") permit (principal, action, resource);`},
			wantErr: []string{`@id is empty`},
		},
		{
			name: "every bad file reported",
			files: map[string]string{
				"a.cedar": "permit (",
				"b.cedar": `permit (principal, action == Action::"nope", resource);`,
			},
			wantErr: []string{"a.cedar:", "b.cedar:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Load(writeDir(t, tt.files))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load succeeded with %d policies; want an error", set.Len())
				}
				var le *LoadError
				if !errors.As(err, &le) || len(le.Problems) == 0 {
					t.Fatalf("error %v is not a *LoadError with problems", err)
				}
				rest := err.Error()
				for _, want := range tt.wantErr {
					i := strings.Index(rest, want)
					if i < 0 {
						t.Fatalf("error does not contain %q (in order):\n%v", want, err)
					}
					rest = rest[i+len(want):]
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var got []string
			for _, p := range set.Policies() {
				got = append(got, p.ID)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("policy ids = %q, want %q", got, tt.wantIDs)
			}
		})
	}
}

func TestLoadPolicyInfo(t *testing.T) {
	set, err := Load(writeDir(t, map[string]string{"guard.cedar": "\n@id(\"g\")\n@reason(\"no\")\nforbid (principal, action, resource);\n"}))
	if err != nil {
		t.Fatal(err)
	}
	got := set.Policies()[0]
	if got.ID != "g" || got.Effect != Forbid || got.File != "guard.cedar" || got.Line != 2 || got.Column != 1 ||
		got.Annotations["reason"] != "no" || got.Annotations["id"] != "g" || set.Files() != 1 {
		t.Errorf("PolicyInfo = %+v, files %d", got, set.Files())
	}
}

func TestLoadMissingDir(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing dir: %v, want a not-exist error", err)
	}
	var le *LoadError
	if errors.As(err, &le) {
		t.Errorf("a missing dir is not a problem in the files: %v", err)
	}
	if Validate(filepath.Join(t.TempDir(), "nope")) == nil {
		t.Errorf("Validate of a missing dir succeeded")
	}
}

func TestLoadFollowsSymlinks(t *testing.T) {
	// Kubernetes mounts a ConfigMap as symlinks into a hidden ..data dir.
	dir := writeDir(t, nil)
	data := filepath.Join(dir, "..data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "a.cedar"), []byte(`@id("x") permit (principal, action, resource);`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "a.cedar"), filepath.Join(dir, "a.cedar")); err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir)
	if err != nil || set.Len() != 1 {
		t.Fatalf("Load = %v, %v; want the one linked policy", set, err)
	}
}
