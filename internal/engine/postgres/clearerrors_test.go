package postgres_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/jackc/pgx/v5"
)

// TestDialFailuresSayWhy is issue 12's "clear errors": a new user whose
// upstream login fails got `cannot connect to pg upstream / see the
// gateway log` whatever the cause. Now the client gets the upstream's own
// answer to its request with its SQLSTATE, or the sentence that names what
// is missing, never the credential; and the failure is counted by reason.
func TestDialFailuresSayWhy(t *testing.T) {
	h := newHarness(t, harnessOpts{connExtra: "    databases: [nosuchdb]\n"})
	tok := h.token("newcomer", "read")
	cases := []struct {
		name     string
		password *string // the credential's value meanwhile; nil unsets it
		db       string
		code     string
		message  string
		reason   string
	}{
		{"database that does not exist", &h.password, "nosuchdb", "3D000", `database "nosuchdb" does not exist`, agent.ReasonUpstream},
		{"credential not configured", nil, h.db, "08006", "gatehouse: the credential for connection pg is not configured (env " + h.passwordEnv + " is empty)", agent.ReasonCredential},
		{"credential wrong", ptr("not-the-password"), h.db, "28P01", "gatehouse: the upstream of connection pg refused the agent's login: password authentication failed for user", agent.ReasonUpstream},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.password == nil {
				os.Unsetenv(h.passwordEnv)
			} else {
				os.Setenv(h.passwordEnv, *tc.password)
			}
			defer os.Setenv(h.passwordEnv, h.password)
			before := counterValue(t, h.gw.Metrics.UpstreamDialFailures.WithLabelValues("postgres", "pg", tc.reason))
			dsn := strings.Replace(h.dsn(tok), "/"+h.db+"?", "/"+tc.db+"?", 1)
			c, err := pgx.Connect(context.Background(), dsn)
			if err == nil {
				c.Close(context.Background())
				t.Fatal("connected")
			}
			pe := pgErr(err)
			if pe == nil || pe.Code != tc.code || !strings.HasPrefix(pe.Message, tc.message) {
				t.Fatalf("error = %v, want %s %q", err, tc.code, tc.message)
			}
			if strings.Contains(err.Error(), h.password) || strings.Contains(pe.Hint, h.password) {
				t.Fatalf("the credential reached the client: %v", err)
			}
			if after := counterValue(t, h.gw.Metrics.UpstreamDialFailures.WithLabelValues("postgres", "pg", tc.reason)); after != before+1 {
				t.Fatalf("dial failures{reason=%s}: %v → %v", tc.reason, before, after)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
