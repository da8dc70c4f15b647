package mcp_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// approvalPolicy lets a read-scoped agent update users only after a member
// of dba approves.
const approvalPolicy = `
@id("users-update-needs-dba")
@approval("dba")
permit (principal is Agent, action == Action::"sql:update", resource == Table::"pg/public.users")
when { principal.scopes.contains("read") };
`

// review approves or denies as bob, a dba member.
func (h *harness) review(id string, approve bool) {
	h.t.Helper()
	ctx := admin.WithCaller(context.Background(), admin.Caller{ID: "bob@example.com", Principal: `User::"bob@example.com"`, Groups: []string{"dba"}})
	var err error
	if approve {
		_, err = h.gw.Admin.Approve(ctx, id, "looks fine")
	} else {
		_, err = h.gw.Admin.Deny(ctx, id, "not today")
	}
	if err != nil {
		h.t.Fatalf("review %s: %v", id, err)
	}
}

func (h *harness) note(id int) string {
	h.t.Helper()
	db, err := sql.Open("pgx", h.upstream)
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	var note string
	if err := db.QueryRow("SELECT note FROM users WHERE id = $1", id).Scan(&note); err != nil {
		h.t.Fatal(err)
	}
	return note
}

// pendingQuery sends a statement that policy holds and expects "pending".
func pendingQuery(t *testing.T, cs *mcp.ClientSession, sql string) string {
	t.Helper()
	res := call(t, cs, "query", map[string]any{"connection": "pg", "sql": sql, "wait_seconds": 1})
	if res.IsError && strings.Contains(text(res), "approvals are not configured") {
		t.Skip("approvals (issue 6) are not wired into the gateway yet: an @approval permit denies")
	}
	var out queryOut
	structured(t, res, &out)
	if res.IsError || out.Status != "pending" || out.ApprovalID == "" || !strings.Contains(text(res), out.ApprovalID) {
		t.Fatalf("held statement: error %v, %+v: %s", res.IsError, out, text(res))
	}
	return out.ApprovalID
}

type statusOut struct {
	Status string   `json:"status"`
	Error  string   `json:"error"`
	Result queryOut `json:"result"`
}

// approvalSuite is the approval flow end to end over one transport.
func approvalSuite(t *testing.T, h *harness, cs *mcp.ClientSession) {
	t.Run("held, polled, approved, result", func(t *testing.T) {
		const stmt = "UPDATE users SET note = 'approved via mcp' WHERE id = 1"
		id := pendingQuery(t, cs, stmt)
		var st statusOut
		res := call(t, cs, "approval_status", map[string]any{"approval_id": id})
		structured(t, res, &st)
		if res.IsError || st.Status != "pending" {
			t.Fatalf("approval_status before review: %+v %s", st, text(res))
		}
		// The same query sent again joins the held statement: no second approval.
		if again := pendingQuery(t, cs, stmt); again != id {
			t.Fatalf("re-sent query got approval %s, want %s", again, id)
		}
		if h.note(1) == "approved via mcp" {
			t.Fatal("the statement ran before approval")
		}
		h.review(id, true)
		res = call(t, cs, "approval_status", map[string]any{"approval_id": id, "wait_seconds": 20})
		st = statusOut{}
		structured(t, res, &st)
		if res.IsError || st.Status != "completed" || st.Result.CommandTag != "UPDATE 1" {
			t.Fatalf("approval_status after approval: %+v %s", st, text(res))
		}
		if got := h.note(1); got != "approved via mcp" {
			t.Fatalf("note = %q after approval", got)
		}
	})
	t.Run("approved while the call waits", func(t *testing.T) {
		done := make(chan *mcp.CallToolResult, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "query", Arguments: map[string]any{
				"connection": "pg", "sql": "UPDATE users SET note = 'waited' WHERE id = 2", "wait_seconds": 30}})
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		id := waitForApproval(t, h)
		h.review(id, true)
		res := <-done
		var out queryOut
		structured(t, res, &out)
		if res.IsError || out.Status != "ok" || out.CommandTag != "UPDATE 1" {
			t.Fatalf("query approved while waiting: %+v %s", out, text(res))
		}
	})
	t.Run("denied", func(t *testing.T) {
		id := pendingQuery(t, cs, "UPDATE users SET note = 'never' WHERE id = 3")
		h.review(id, false)
		var st statusOut
		res := call(t, cs, "approval_status", map[string]any{"approval_id": id, "wait_seconds": 20})
		structured(t, res, &st)
		if res.IsError || st.Status != "failed" || !strings.Contains(st.Error, "denied") {
			t.Fatalf("approval_status after deny: %+v %s", st, text(res))
		}
		if h.note(3) == "never" {
			t.Fatal("a denied statement ran")
		}
	})
}

// waitForApproval returns the id of the one pending approval once it exists.
func waitForApproval(t *testing.T, h *harness) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		as, err := h.gw.Approvals.List(context.Background(), "pending")
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 1 {
			return as[0].ID
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no pending approval appeared")
	return ""
}

func TestApprovalOverHTTP(t *testing.T) {
	h := newHarness(t, harnessOpts{extraPolicy: approvalPolicy})
	h.seed()
	approvalSuite(t, h, h.connectHTTP(h.token("report-bot", "read")))
}

func TestApprovalOverStdio(t *testing.T) {
	h := newHarness(t, harnessOpts{extraPolicy: approvalPolicy})
	h.seed()
	approvalSuite(t, h, h.connectStdio(h.token("report-bot", "read")))
}

// heldToolPolicy lets held-bot call list_connections only after a member of
// dba approves.
const heldToolPolicy = `
@id("held-bot-lists-after-approval")
@approval("dba")
permit (principal == Agent::"held-bot", action == Action::"mcp:call", resource == Tool::"gatehouse/list_connections");
`

// TestToolCallHeld: a permit of mcp:call itself may ask for an approval.
// The call waits (mcp.approval_wait), then fails naming the approval; once
// a reviewer approves, the same call with the same arguments runs.
func TestToolCallHeld(t *testing.T) {
	h := newHarness(t, harnessOpts{mcpYAML: "{approval_wait: 1s}", extraPolicy: heldToolPolicy})
	cs := h.connectHTTP(h.token("held-bot"))
	res := call(t, cs, "list_connections", nil)
	if !res.IsError || !strings.Contains(text(res), "stays pending") {
		t.Fatalf("held tool call: error %v: %s", res.IsError, text(res))
	}
	id := waitForApproval(t, h)
	if !strings.Contains(text(res), id) {
		t.Fatalf("the error does not name approval %s: %s", id, text(res))
	}
	h.review(id, true)
	res = call(t, cs, "list_connections", nil)
	if res.IsError || !strings.Contains(text(res), "pg (postgres") {
		t.Fatalf("the approved call: %s", text(res))
	}
}

// TestApprovalStatusOfOthers: approval_status tells an agent about its own
// approvals only (approval:view, the requester acting for the same human):
// another agent learns nothing, not even that the id exists, whether a
// query of this engine waits on it or it is only a record in the store
// (one a wire client asked for).
func TestApprovalStatusOfOthers(t *testing.T) {
	h := newHarness(t, harnessOpts{extraPolicy: approvalPolicy})
	h.seed()
	held := pendingQuery(t, h.connectHTTP(h.token("report-bot", "read")), "UPDATE users SET note = 'mine' WHERE id = 4")
	rec, err := h.gw.Approvals.RequestOperation(context.Background(), approval.HoldSpec{Operation: approval.Operation{
		Principal: `Agent::"report-bot"`, OnBehalfOf: "alice@example.com", Connection: "pg", Action: "sql:update",
		Text: "UPDATE users SET note = 'wire' WHERE id = 5"}, Group: "dba"})
	if err != nil {
		t.Fatal(err)
	}
	other := h.connectHTTP(h.token("other-bot", "read"))
	for _, id := range []string{held, rec.ID} {
		res := call(t, other, "approval_status", map[string]any{"approval_id": id})
		if !res.IsError || strings.Contains(text(res), "pending") {
			t.Errorf("another agent's approval_status of %s: error %v: %s", id, res.IsError, text(res))
		}
	}
	var st statusOut
	res := call(t, h.connectHTTP(h.token("report-bot", "read")), "approval_status", map[string]any{"approval_id": rec.ID})
	structured(t, res, &st)
	if res.IsError || st.Status != "pending" {
		t.Fatalf("the requester's approval_status of its record: %+v %s", st, text(res))
	}
}
