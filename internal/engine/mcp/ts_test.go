package mcp_test

import (
	"bufio"
	"encoding/json"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// tsStep is one line the TypeScript client prints.
type tsStep struct {
	Step       string `json:"step"`
	ApprovalID string `json:"approval_id"`
	Tools      []struct {
		Name string `json:"name"`
	} `json:"tools"`
	Result struct {
		IsError           bool                          `json:"isError"`
		Content           []struct{ Type, Text string } `json:"content"`
		StructuredContent map[string]json.RawMessage    `json:"structuredContent"`
	} `json:"result"`
}

func (s tsStep) text() string {
	var b strings.Builder
	for _, c := range s.Result.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

// TestTypeScriptClient drives the tools with the official TypeScript SDK
// client (@modelcontextprotocol/sdk from npm, installed by scripts/test.sh)
// over Streamable HTTP with the token header, and over stdio through the
// spawned `gatehouse mcp` bridge: tools listed, an allowed query, a denied
// one, masked values, and the approval flow with a human approving midway.
func TestTypeScriptClient(t *testing.T) {
	dir, _ := filepath.Abs("testdata/ts")
	_, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk"))
	node, nodeErr := exec.LookPath("node")
	testenv.Require(t, err == nil && nodeErr == nil, "node and testdata/ts/node_modules (npm ci in internal/engine/mcp/testdata/ts)")
	for _, transport := range []string{"http", "stdio"} {
		t.Run(transport, func(t *testing.T) {
			h := newHarness(t, harnessOpts{extraPolicy: approvalPolicy})
			h.seed()
			cmd := exec.Command(node, "client.mjs")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GATEHOUSE_URL="+h.api, "GATEHOUSE_TOKEN="+h.token("ts-bot", "read"), "TRANSPORT="+transport)
			if transport == "stdio" {
				cmd.Env = append(cmd.Env, "GATEHOUSE_BIN="+binary(t))
			}
			cmd.Stderr = testWriter{t}
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
			defer timer.Stop()
			steps := map[string]tsStep{}
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var s tsStep
				if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
					t.Fatalf("client printed %q: %v", sc.Text(), err)
				}
				t.Logf("%s: %.300s", s.Step, sc.Text())
				steps[s.Step] = s
				if s.Step == "await_review" {
					h.review(s.ApprovalID, true)
					io.WriteString(stdin, "approved\n")
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("node client: %v", err)
			}
			checkTSSteps(t, h, steps)
		})
	}
}

func checkTSSteps(t *testing.T, h *harness, steps map[string]tsStep) {
	t.Helper()
	if _, ok := steps["done"]; !ok {
		t.Fatalf("the client did not finish: steps %v", slices.Collect(maps.Keys(steps)))
	}
	var names []string
	for _, tool := range steps["tools"].Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"approval_status", "describe", "list_connections", "query"}) {
		t.Errorf("tools = %v", names)
	}
	if s := steps["list_connections"]; s.Result.IsError || !strings.Contains(s.text(), "pg (postgres") {
		t.Errorf("list_connections: %s", s.text())
	}
	if s := steps["describe"]; s.Result.IsError || !strings.Contains(s.text(), "partial") {
		t.Errorf("describe: %s", s.text())
	}
	if s := steps["allowed"]; s.Result.IsError || string(s.Result.StructuredContent["row_count"]) != "2" || !strings.Contains(s.text(), "(2 rows)") {
		t.Errorf("allowed query: %s", s.text())
	}
	masked := steps["masked"]
	if masked.Result.IsError || strings.Contains(string(masked.Result.StructuredContent["rows"]), "user7@example.com") ||
		strings.Contains(string(masked.Result.StructuredContent["rows"]), "4111 1111 1111 1111") || !strings.Contains(masked.text(), "REDACTED") {
		t.Errorf("masked query: %s %s", masked.text(), masked.Result.StructuredContent["rows"])
	}
	if s := steps["denied"]; !s.Result.IsError || !strings.Contains(s.text(), "no policy permits sql:delete") {
		t.Errorf("denied query: error %v %s", s.Result.IsError, s.text())
	}
	if s := steps["held"]; s.Result.IsError || string(s.Result.StructuredContent["status"]) != `"pending"` {
		t.Fatalf("held query: %s", s.text())
	}
	if s := steps["status_pending"]; string(s.Result.StructuredContent["status"]) != `"pending"` {
		t.Errorf("approval_status before review: %s", s.text())
	}
	if s := steps["status_done"]; s.Result.IsError || string(s.Result.StructuredContent["status"]) != `"completed"` || !strings.Contains(s.text(), "UPDATE 1") {
		t.Errorf("approval_status after approval: %s", s.text())
	}
	if got := h.note(5); got != "approved via ts" {
		t.Errorf("note = %q after the approved update", got)
	}
	// The gateway audited the TypeScript client by name.
	found := false
	for _, ev := range h.events(300) {
		if ev.Action == "mcp:call" && ev.Details["mcp_client"] == "gatehouse-ts-test/7.8.9" {
			found = true
		}
	}
	if !found {
		t.Errorf("no mcp:call decision names the TypeScript client")
	}
}
