package config

import (
	"strings"
	"testing"
	"time"
)

func TestLimitsDefaults(t *testing.T) {
	c, err := Parse([]byte("data_dir: x\n"), "g.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{HandshakeTimeout: 10 * time.Second, Unauthenticated: 1000, UnauthenticatedPerSource: 100, Sessions: 1000, SessionsPerPrincipal: 100}
	if c.Limits != want {
		t.Fatalf("limits = %+v, want %+v", c.Limits, want)
	}
	// Setting only a total lowers the per-principal default under it.
	c, err = Parse([]byte("limits: {sessions: 20, unauthenticated: 30}\n"), "g.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.SessionsPerPrincipal != 20 || c.Limits.UnauthenticatedPerSource != 30 {
		t.Fatalf("limits = %+v, want per-principal 20 and per-source 30", c.Limits)
	}
}

func TestLimitsErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"handshake too short", "limits: {handshake_timeout: 10ms}\n", "limits.handshake_timeout"},
		{"handshake too long", "limits: {handshake_timeout: 1h}\n", "limits.handshake_timeout"},
		{"negative cap", "limits: {sessions: -1}\n", "at least 1"},
		{"per source above total", "limits: {unauthenticated: 10, unauthenticated_per_source: 11}\n", "limits.unauthenticated_per_source"},
		{"per principal above total", "limits: {sessions: 5, sessions_per_principal: 6}\n", "limits.sessions_per_principal"},
		{"unknown key", "limits: {sesions: 5}\n", "sesions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "g.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
