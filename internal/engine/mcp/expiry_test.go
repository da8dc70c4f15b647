package mcp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// revoke revokes tok as an administrator does.
func (h *harness) revoke(tok string) {
	h.t.Helper()
	c, err := h.gw.Identity.Verify(context.Background(), tok)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.gw.Admin.RevokeToken(context.Background(), c.ID, "test"); err != nil {
		h.t.Fatal(err)
	}
}

// TestRevokeCutsHeldQuery: a query whose statement waits in the background
// for approval runs on a wire session opened with the call's token, so a
// revoke ends it: the statement does not run even if approved later, and
// the agent (with a new token) reads why.
func TestRevokeCutsHeldQuery(t *testing.T) {
	h := newHarness(t, harnessOpts{extraPolicy: approvalPolicy})
	h.seed()
	tok := h.token("report-bot", "read")
	id := pendingQuery(t, h.connectHTTP(tok), "UPDATE users SET note = 'after revoke' WHERE id = 5")
	h.revoke(tok)

	cs := h.connectHTTP(h.token("report-bot", "read"))
	var st statusOut
	res := call(t, cs, "approval_status", map[string]any{"approval_id": id, "wait_seconds": 10})
	structured(t, res, &st)
	if res.IsError || st.Status != "failed" || !strings.Contains(st.Error, "the session's token was revoked") {
		t.Fatalf("approval_status after the revoke: %+v %s", st, text(res))
	}
	h.review(id, true)
	time.Sleep(500 * time.Millisecond)
	if h.note(5) == "after revoke" {
		t.Fatal("the held statement ran after its token was revoked")
	}
}

// TestRevokeCutsHeldToolCall: a tool call waiting for approval (a permit of
// mcp:call with @approval) stops waiting when its token is revoked, rather
// than holding on for mcp.approval_wait.
func TestRevokeCutsHeldToolCall(t *testing.T) {
	h := newHarness(t, harnessOpts{mcpYAML: "{approval_wait: 30s}", extraPolicy: heldToolPolicy})
	tok := h.token("held-bot")
	cs := h.connectHTTP(tok)
	done := make(chan *mcp.CallToolResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_connections"})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	waitForApproval(t, h)
	start := time.Now()
	h.revoke(tok)
	select {
	case res := <-done:
		if res == nil || !res.IsError || !strings.Contains(text(res), "the session's token was revoked") {
			t.Fatalf("held call after the revoke: %v", res)
		}
		t.Logf("cut off %v after the revoke", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("the held call still waits after its token was revoked")
	}
}
