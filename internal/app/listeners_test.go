package app_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testenv/gatewaytest"
)

// readyGateway runs a gateway on SQLite with the api, postgres and agents
// listeners, and returns it, its API address, and its raw listeners by
// name (what Gateway.Listen opened), so a test can kill one.
func readyGateway(t *testing.T, extraYAML string) (*app.Gateway, string, map[string]net.Listener) {
	t.Helper()
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	if err := os.CopyFS(policies, policy.StarterFS()); err != nil {
		t.Fatal(err)
	}
	apiAddr, pgAddr, agentsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	yaml := fmt.Sprintf("data_dir: %s/data\npolicies: %s\nlog: {level: warn}\nlisten: {api: %s, postgres: %s, agents: %s}\n",
		dir, policies, apiAddr, pgAddr, agentsAddr) + extraYAML
	cfg, err := config.Parse([]byte(yaml), filepath.Join(dir, "gatehouse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{apiAddr: "api", pgAddr: "postgres", agentsAddr: "agents"}
	var mu sync.Mutex
	raw := map[string]net.Listener{}
	gw, stop := gatewaytest.StartWith(t, cfg, func(g *app.Gateway) {
		g.Listen = func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err == nil {
				mu.Lock()
				raw[names[addr]] = ln
				mu.Unlock()
			}
			return ln, err
		}
	})
	t.Cleanup(func() { stop() })
	return gw, apiAddr, raw
}

func readyz(t *testing.T, api string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + api + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzNamesADeadListener: a listener whose socket is closed under
// the gateway (its accept loop ends) makes /readyz answer 503 naming it,
// while /healthz stays 200. On main /readyz looked at the store only and
// kept answering 200 with the PostgreSQL port dead.
func TestReadyzNamesADeadListener(t *testing.T) {
	for _, name := range []string{"postgres", "agents"} {
		t.Run(name, func(t *testing.T) {
			_, api, raw := readyGateway(t, "")
			if code, body := readyz(t, api); code != 200 {
				t.Fatalf("before: /readyz = %d %q", code, body)
			}
			raw[name].Close()
			deadline := time.Now().Add(5 * time.Second)
			for {
				code, body := readyz(t, api)
				if code == http.StatusServiceUnavailable {
					if !strings.Contains(body, name+" listener: stopped") {
						t.Fatalf("/readyz 503 body %q does not name the %s listener", body, name)
					}
					for _, other := range []string{"postgres", "agents"} {
						if other != name && strings.Contains(body, other) {
							t.Fatalf("/readyz body %q names the healthy %s listener", body, other)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz still %d %q with the %s listener closed", code, body, name)
				}
				time.Sleep(20 * time.Millisecond)
			}
			resp, err := http.Get("http://" + api + "/healthz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("/healthz = %v, %v: liveness must not follow readiness", resp, err)
			}
			resp.Body.Close()
		})
	}
}

// TestAgentsListenerCapsUnauthenticated: the agents listener (mTLS) runs
// the same gate as the PostgreSQL one. Connections that never finish the
// TLS handshake fill a source's slots, and the next from that source is
// closed at once instead of holding a descriptor for the handshake's 15 s.
func TestAgentsListenerCapsUnauthenticated(t *testing.T) {
	gw, _, _ := readyGateway(t, "limits: {unauthenticated: 10, unauthenticated_per_source: 2}\n")
	addr := gw.Config.Listen.Agents
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	idle := []net.Conn{dial(), dial()}
	over := dial()
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if n, err := over.Read(make([]byte, 1)); n != 0 || err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("third connection from one source: read %d, %v after %s; want it closed at once", n, err, time.Since(start))
	}
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("admitted connection closed early: %v", err)
		}
	}
}
