package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// listDocs says where the fields of each list's items are documented: the
// page, and the heading of the section whose table names them.
var listDocs = map[string]struct{ file, section string }{
	"connections":             {"configuration.md", "### Connections"},
	"identity.oidc":           {"identity.md", ""},
	"identity.token_exchange": {"identity.md", ""},
	"approvals.webhooks":      {"configuration.md", ""},
}

// TestEveryKeyDocumented: each key of gatehouse.yaml, read from the Config
// struct's yaml tags, is named in docs/configuration.md (a list item's
// fields in the section listDocs names), so the page that says it
// documents every key cannot leave one out (issue 12: masking.*, tls.*,
// postgres.max_message_bytes and approvals.* were missing).
func TestEveryKeyDocumented(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("../../docs/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cfgDoc := read("configuration.md")
	for _, k := range Keys() {
		if k.Kind == reflect.Struct {
			continue // a map of keys: its keys are documented one by one
		}
		if k.Kind == reflect.Struct {
			continue // a map of keys: its keys are documented one by one
		}
		list, field, inList := strings.Cut(k.Path, "[].")
		if !inList {
			if !strings.Contains(cfgDoc, "`"+k.Path+"`") {
				t.Errorf("docs/configuration.md does not document `%s`", k.Path)
			}
			continue
		}
		if strings.Contains(field, "[].") || strings.Contains(field, ".") {
			field = field[strings.LastIndex(field, ".")+1:]
		}
		d, ok := listDocs[list]
		if !ok {
			t.Errorf("list %s: say in listDocs where its items' fields are documented", list)
			continue
		}
		doc := read(d.file)
		if d.section != "" {
			_, after, found := strings.Cut(doc, d.section)
			if !found {
				t.Fatalf("%s has no section %q", d.file, d.section)
			}
			doc, _, _ = strings.Cut(after, "\n## ")
		}
		if !strings.Contains(doc, "`"+field+"`") && !strings.Contains(doc, "`"+list+"[]."+field+"`") {
			t.Errorf("docs/%s does not document `%s` of %s", d.file, field, list)
		}
	}
}
