package postgres_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestMetricsNameWhatRuns scrapes /metrics with a session open: sessions
// per engine and connection, decisions, agents and tunnel streams, the
// audit queue and approvals are there; and with metrics.token set the
// scrape needs it.
func TestMetricsNameWhatRuns(t *testing.T) {
	const env = "GH_TEST_METRICS_TOKEN"
	os.Setenv(env, "metrics-secret-"+randHex(4))
	defer os.Unsetenv(env)
	secret := os.Getenv(env)
	h := newHarness(t, harnessOpts{extraConfig: "metrics: {token: env:" + env + "}\n"})
	seed(h)
	c := connect(t, h.dsn(h.token("metered", "read")))
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatal(err)
	}
	scrape := func(auth string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+h.gw.Config.Listen.API+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Fatalf("scrape without the token: %d", code)
	}
	if code, _ := scrape("Bearer wrong"); code != http.StatusUnauthorized {
		t.Fatalf("scrape with a wrong token: %d", code)
	}
	code, body := scrape("Bearer " + secret)
	if code != http.StatusOK {
		t.Fatalf("scrape with the token: %d", code)
	}
	for _, want := range []string{
		`gatehouse_sessions_active{connection="pg",engine="postgres"} 1`,
		`gatehouse_decisions_total{action="sql:select",result="allow"}`,
		"gatehouse_agents_connected 1",
		"gatehouse_tunnel_streams ",
		"gatehouse_audit_queue_depth ",
		"gatehouse_audit_durable_seconds_bucket",
		"gatehouse_approvals_pending 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	c.Close(context.Background())
}
