package config

import (
	"strings"
	"testing"
	"time"
)

func TestMCPConfig(t *testing.T) {
	c, err := Parse([]byte("mcp: {max_rows: 50, approval_wait: 10s}\n"), "/tmp/gatehouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.MCP.MaxRows != 50 || c.MCP.MaxRowsLimit != DefaultMCPMaxRowsLimit || c.MCP.ApprovalWait != 10*time.Second ||
		c.MCP.ApprovalWaitLimit != DefaultMCPApprovalWaitLimit || c.MCP.Hold != DefaultMCPHold || c.MCP.Disabled {
		t.Fatalf("mcp = %+v", c.MCP)
	}
	tests := []struct{ name, yaml, want string }{
		{"rows above the limit", "mcp: {max_rows: 5000}", "max_rows (5000)"},
		{"wait above the limit", "mcp: {approval_wait: 1h}", "approval_wait at most approval_wait_limit"},
		{"bad public url", "mcp: {public_url: 'gatehouse.example.com'}", "mcp.public_url"},
		{"reserved connection name", "connections: [{name: gatehouse, type: postgres, address: 'db:5432'}]", `"gatehouse" is reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "/tmp/gatehouse.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%s) = %v, want an error containing %q", tt.yaml, err, tt.want)
			}
		})
	}
}
