package identity_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// oidcDir holds the Node side: a real OpenID provider (panva/oidc-provider,
// OpenID Certified) started on loopback by startOIDCProvider.
const oidcDir = "testdata/oidc"

// startOIDCProvider runs testdata/oidc/server.js on a free loopback port
// and returns its issuer URL. Without node or node_modules it skips, unless
// GATEHOUSE_INTEGRATION=1 demands the integration tests run.
func startOIDCProvider(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(oidcDir, "node_modules", "oidc-provider", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("OpenID provider not installed (%v); run: (cd internal/identity/%s && npm ci)", err, oidcDir)
		if os.Getenv("GATEHOUSE_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var lastErr error
	for range 5 {
		// Below 32768, Linux's ephemeral range, so no outgoing connection
		// can be holding the port between our check and node's bind.
		port := 20000 + rand.IntN(32768-20000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			lastErr = err
			continue
		}
		l.Close()
		issuer, err := runProvider(t, node, port)
		if err == nil {
			return issuer
		}
		lastErr = err
	}
	t.Fatalf("starting the OpenID provider: %v", lastErr)
	return ""
}

// runProvider starts node and waits for its "ready <issuer>" line.
func runProvider(t *testing.T, node string, port int) (string, error) {
	cmd := exec.Command(node, "server.js", fmt.Sprint(port))
	cmd.Dir = oidcDir
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if issuer, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- issuer
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(exited)
	}()
	select {
	case issuer := <-ready:
		t.Cleanup(stop)
		return issuer, nil
	case <-exited:
		return "", fmt.Errorf("provider exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		stop()
		return "", fmt.Errorf("provider not ready after 30s: %s", stderr.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clientCredentialsToken gets a JWT access token for the urn:gatehouse
// resource from the provider's token endpoint (found by discovery).
func clientCredentialsToken(t *testing.T, issuer, client, scope string) string {
	t.Helper()
	var disc struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	getJSON(t, issuer+"/.well-known/openid-configuration", &disc)
	resp, err := http.PostForm(disc.TokenEndpoint, url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {client},
		"client_secret": {client + "-secret"},
		"scope":         {scope},
		"resource":      {"urn:gatehouse"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token endpoint: %s %v %s %s", resp.Status, err, body.Error, body.Description)
	}
	return body.AccessToken
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func TestOIDCProviderIntegration(t *testing.T) {
	issuer := startOIDCProvider(t)
	ctx := context.Background()
	svc, err := identity.New(ctx, identity.Config{
		OIDC: []identity.OIDCIssuer{{Issuer: issuer, Audience: "gatehouse", AcceptDirect: true}},
		TokenExchange: []identity.ExchangeRule{
			{
				Name: "payments-ci", Issuer: issuer,
				Match:           map[string]string{"client_id": "ci-runner", "repository": "acme/*"},
				Agent:           "payments-ci",
				OnBehalfOfClaim: "actor",
				Connections:     []string{"pg-payments"},
				Scopes:          []identity.Scope{"read", "write"},
				TTL:             5 * time.Minute,
			},
			{
				Name: "dba", Issuer: issuer,
				Match:       map[string]string{"groups": "dba"},
				UserClaim:   "email",
				Connections: []string{"pg-*"},
				Scopes:      []identity.Scope{"read"},
			},
		},
	}, filepath.Join(t.TempDir(), "keys"), newMemRevocations(), identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.ExchangeHandler())
	defer srv.Close()

	ciToken := clientCredentialsToken(t, issuer, "ci-runner", "read write")
	aliceToken := clientCredentialsToken(t, issuer, "alice-cli", "read")
	malloryToken := clientCredentialsToken(t, issuer, "mallory-cli", "read")
	if h := decodeHeader(t, ciToken); h["typ"] != "at+jwt" || h["alg"] != "RS256" {
		t.Fatalf("provider access token header = %v, want an RS256 at+jwt", h)
	}

	t.Run("exchange for a scoped agent token", func(t *testing.T) {
		status, body, _, raw := post(t, srv.URL, exchangeForm(ciToken, "scope", "read", "audience", "gatehouse"))
		if status != 200 {
			t.Fatalf("exchange: %d %s", status, raw)
		}
		if body["issued_token_type"] != identity.TokenTypeJWT || body["token_type"] != "Bearer" || body["scope"] != "read" || body["expires_in"].(float64) != 300 {
			t.Errorf("response = %s", raw)
		}
		c, err := svc.Verify(ctx, body["access_token"].(string))
		if err != nil {
			t.Fatalf("Verify exchanged token: %v", err)
		}
		if c.Kind != identity.KindAgent || c.Subject != "payments-ci" || c.Actor != "alice@example.com" ||
			!c.HasScope(identity.ScopeRead) || c.HasScope(identity.ScopeWrite) || !c.AllowsConnection("pg-payments") || c.AllowsConnection("pg-hr") {
			t.Errorf("claims = %+v", c)
		}
	})
	t.Run("exchange for a user token by group", func(t *testing.T) {
		status, body, _, raw := post(t, srv.URL, exchangeForm(aliceToken))
		if status != 200 {
			t.Fatalf("exchange: %d %s", status, raw)
		}
		c, err := svc.Verify(ctx, body["access_token"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if c.Kind != identity.KindUser || c.Subject != "alice@example.com" || !slices.Equal(c.Groups, []string{"dba", "oncall"}) {
			t.Errorf("claims = %+v", c)
		}
	})
	refusals := []struct {
		name, token, scope, code string
	}{
		{"no rule matches", malloryToken, "", "unauthorized_client"},
		{"scope not allowed by the rule", ciToken, "read admin", "invalid_scope"},
		{"scope not allowed for the user", aliceToken, "write", "invalid_scope"},
	}
	for _, tt := range refusals {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			form := exchangeForm(tt.token)
			if tt.scope != "" {
				form.Set("scope", tt.scope)
			}
			status, body, _, raw := post(t, srv.URL, form)
			if status != 400 || body["error"] != tt.code {
				t.Fatalf("exchange: %d %s, want 400 %s", status, raw, tt.code)
			}
			if strings.Contains(raw, splitDots(tt.token)[2]) {
				t.Errorf("response echoes the token")
			}
		})
	}
	t.Run("refused: issuer not trusted", func(t *testing.T) {
		other, err := identity.New(ctx, identity.Config{}, filepath.Join(t.TempDir(), "keys"), newMemRevocations(), identity.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/token", strings.NewReader(exchangeForm(ciToken).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		other.ExchangeHandler().ServeHTTP(rec, req)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "invalid_grant") {
			t.Errorf("untrusted issuer: %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("verify a provider token as a user with groups", func(t *testing.T) {
		c, err := svc.Verify(ctx, aliceToken)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.Kind != identity.KindUser || c.Subject != "alice@example.com" || c.Email != "alice@example.com" ||
			!c.InGroup("dba") || !c.InGroup("oncall") || !c.External || c.Issuer != issuer {
			t.Errorf("claims = %+v", c)
		}
	})
	t.Run("verify refuses a tampered provider token", func(t *testing.T) {
		p := splitDots(aliceToken)
		tampered := p[0] + "." + b64JSON(t, map[string]any{"iss": issuer, "aud": "gatehouse", "email": "root@example.com", "exp": time.Now().Add(time.Hour).Unix()}) + "." + p[2]
		if _, err := svc.Verify(ctx, tampered); !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("Verify tampered: %v, want ErrBadSignature", err)
		}
	})
}
