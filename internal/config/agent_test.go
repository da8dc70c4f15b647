package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

func TestParseAgent(t *testing.T) {
	const conn = `
connections:
  - {name: pg, type: postgres, address: "127.0.0.1:5432", user: u, password: "env:PW"}`
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"ok", "name: a1\ngateway: gw:8443\n" + conn, ""},
		{"several gateways", "name: a1\ngateways: [gw1:8443, gw2:8443]\n" + conn, ""},
		{"no name", "gateway: gw:8443\n" + conn, "name"},
		{"bad name", "name: 'a 1'\ngateway: gw:8443\n" + conn, "name"},
		{"no gateway", "name: a1\n" + conn, "gateway is required"},
		{"bad gateway", "name: a1\ngateway: gw\n" + conn, "not host:port"},
		{"no connections", "name: a1\ngateway: gw:8443\n", "serves none"},
		{"unknown key", "name: a1\ngateway: gw:8443\nbogus: 1\n" + conn, "bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := config.ParseAgent([]byte(tc.yaml), "/etc/gatehouse/agent.yaml")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.DataDir != filepath.Join("/etc/gatehouse", "agent-data") || a.Connections[0].TLSMode != "prefer" || len(a.GatewayAddrs()) == 0 {
				t.Fatalf("agent config = %+v", a)
			}
		})
	}
}
