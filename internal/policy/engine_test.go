package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	permitSelect = `@id("select") permit (principal is Agent, action == Action::"sql:select", resource);`
	permitUpdate = `@id("update") permit (principal is Agent, action == Action::"sql:update", resource);`
)

func TestEngineWatch(t *testing.T) {
	dir := writeDir(t, map[string]string{"a.cedar": permitSelect})
	e, err := NewEngine(dir)
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan ReloadResult, 10)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.Watch(ctx, 5*time.Millisecond, func(r ReloadResult) { results <- r }) })
	defer func() { cancel(); wg.Wait() }()

	// Write by rename, as editors and config management do: an in-place
	// write could be polled half-done (empty), which is a real reload of
	// its own and would make the steps below race the poller.
	write := func(name, text string) func() {
		return func() {
			tmp := filepath.Join(dir, ".tmp-"+name)
			if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(name string) func() {
		return func() {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	steps := []struct {
		name         string
		change       func()
		wantPolicies int    // in the result
		wantErr      string // substring of the result's error; "" for success
		allowSelect  bool   // after the step
		allowUpdate  bool
	}{
		{"new file picked up", write("b.cedar", permitUpdate), 2, "", true, true},
		{"bad syntax refused, old set stays", write("b.cedar", "permit (principal,"), 2, filepath.Join(dir, "b.cedar") + ":1:", true, true},
		{"schema violation refused, old set stays", write("b.cedar", `permit (principal, action == Action::"sql:updat", resource);`), 2, `b.cedar:1:1: policy "b.cedar:1"`, true, true},
		{"fixed file accepted", write("b.cedar", "// updates off for now\n"), 1, "", true, false},
		{"edit in place", write("a.cedar", permitUpdate), 1, "", false, true},
		{"duplicate id across files refused", write("b.cedar", permitUpdate), 1, `duplicate policy id`, false, true},
		{"file removed", remove("b.cedar"), 1, "", false, true},
		{"all removed: default deny", remove("a.cedar"), 0, "", false, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change()
			var r ReloadResult
			select {
			case r = <-results:
			case <-time.After(5 * time.Second):
				t.Fatal("no reload reported")
			}
			if st.wantErr == "" && r.Err != nil || st.wantErr != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), st.wantErr)) {
				t.Fatalf("reload error = %v, want %q", r.Err, st.wantErr)
			}
			if r.Policies != st.wantPolicies || r.Dir != dir {
				t.Errorf("reload result = %+v, want %d policies", r, st.wantPolicies)
			}
			if st.wantErr != "" {
				var le *LoadError
				if !errors.As(r.Err, &le) {
					t.Errorf("reload error is %T, want *LoadError", r.Err)
				}
			}
			sel := e.Decide(Request{Principal: agent("read"), Action: "sql:select", Resource: usersTable()})
			upd := e.Decide(Request{Principal: agent("read"), Action: "sql:update", Resource: usersTable()})
			if sel.Allow != st.allowSelect || upd.Allow != st.allowUpdate {
				t.Errorf("after reload select %v update %v, want %v %v", sel.Allow, upd.Allow, st.allowSelect, st.allowUpdate)
			}
		})
	}

	// Nothing changes: nothing is reported, the last error included.
	select {
	case r := <-results:
		t.Errorf("reload reported with no change: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestEngineUnreadableDir(t *testing.T) {
	dir := writeDir(t, map[string]string{"a.cedar": permitSelect})
	e, err := NewEngine(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r := e.Reload()
	if r.Err == nil || !errors.Is(r.Err, os.ErrNotExist) || r.Policies != 1 {
		t.Fatalf("Reload of a removed dir = %+v, want a not-exist error and the old policy", r)
	}
	if _, changed := e.reload(false); changed {
		t.Errorf("the same read error was reported twice")
	}
	if !e.Decide(Request{Principal: agent(), Action: "sql:select", Resource: usersTable()}).Allow {
		t.Errorf("old set no longer active")
	}
}

func TestEngineReloadForced(t *testing.T) {
	e, err := NewEngine(writeDir(t, map[string]string{"a.cedar": permitSelect}))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.Reload(); r.Err != nil || r.Policies != 1 || r.Files != 1 {
		t.Errorf("Reload with no change = %+v, want success with 1 policy", r)
	}
	if e.Set().Len() != 1 {
		t.Errorf("Set().Len() = %d", e.Set().Len())
	}
}

func TestNewEngine(t *testing.T) {
	tests := []struct {
		name    string
		dir     func(t *testing.T) string
		wantErr string
	}{
		{"empty dir denies everything", func(t *testing.T) string { return t.TempDir() }, ""},
		// Issue 12: the error named "." instead of the directory.
		{"missing dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, "nope: no such file or directory; create it"},
		{"bad policy", func(t *testing.T) string { return writeDir(t, map[string]string{"x.cedar": "permit"}) }, "x.cedar:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEngine(tt.dir(t))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewEngine error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := e.Decide(Request{Principal: agent("admin"), Action: "sql:select", Resource: usersTable()})
			if d.Allow || len(d.Policies) > 0 || len(d.Errors) > 0 {
				t.Errorf("empty set decided %+v, want the default deny", d)
			}
		})
	}
}

// TestEngineDecideDuringReload runs decisions while sets are swapped, for the
// race detector: a decision sees one whole set, old or new.
func TestEngineDecideDuringReload(t *testing.T) {
	dir := writeDir(t, map[string]string{"a.cedar": permitSelect})
	e, err := NewEngine(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				d := e.Decide(Request{Principal: agent("read"), Action: "sql:select", Resource: usersTable()})
				if len(d.Errors) > 0 || d.Allow != (len(d.Policies) == 1) {
					t.Errorf("inconsistent decision %+v", d)
					return
				}
			}
		})
	}
	for i := range 20 {
		text := permitSelect
		if i%2 == 0 {
			text = "// nothing\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "a.cedar"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := e.Reload(); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	cancel()
	wg.Wait()
}
