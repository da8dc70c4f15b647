package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// testIssuer is a minimal OpenID issuer in Go (discovery + JWKS + ES256
// signing) for the fast exchange tests; oidc_integration_test.go runs the
// same flows against a real OpenID provider.
type testIssuer struct {
	srv      *httptest.Server
	signer   jose.Signer
	jwksHits atomic.Int32
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: "es-1", Algorithm: string(jose.ES256), Use: "sig"}
	ti := &testIssuer{}
	ti.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": ti.srv.URL, "jwks_uri": ti.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksHits.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}})
	})
	ti.srv = httptest.NewServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) URL() string { return ti.srv.URL }

// mint signs claims, filling iss, aud, iat and exp unless given.
func (ti *testIssuer) mint(t *testing.T, now time.Time, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"iss": ti.URL(), "aud": "gatehouse", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": rand.Text()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := jwt.Signed(ti.signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// exchangeEnv is a Service with a CI issuer (exchange only), an SSO issuer
// (humans log in directly) and an exchange handler served over HTTP.
type exchangeEnv struct {
	*env
	ci, sso, rogue *testIssuer
	svc            *identity.Service
	srv            *httptest.Server
}

func newExchangeEnv(t *testing.T) *exchangeEnv {
	x := &exchangeEnv{env: newEnv(t), ci: newTestIssuer(t), sso: newTestIssuer(t), rogue: newTestIssuer(t)}
	x.svc = x.service(identity.Config{
		OIDC: []identity.OIDCIssuer{
			{Issuer: x.ci.URL(), Audience: "gatehouse"},
			{Issuer: x.sso.URL(), Audience: "gatehouse", AcceptDirect: true, GroupsClaim: "realm_access.roles"},
		},
		TokenExchange: []identity.ExchangeRule{
			{
				Name: "ci-deploy", Issuer: x.ci.URL(),
				Match:           map[string]string{"sub": "repo:acme/*:ref:refs/heads/main", "aud": "gatehouse"},
				Agent:           "deployer",
				OnBehalfOfClaim: "actor",
				Connections:     []string{"pg-prod"},
				Scopes:          []identity.Scope{"read", "write"},
				TTL:             10 * time.Minute,
			},
			{
				Name: "sso-dba", Issuer: x.sso.URL(),
				Match:       map[string]string{"realm_access.roles": "dba", "email": "*@example.com"},
				UserClaim:   "email",
				Connections: []string{"pg-*"},
				Scopes:      []identity.Scope{"read", "write", "ddl"},
			},
		},
	})
	x.srv = httptest.NewServer(x.svc.ExchangeHandler())
	t.Cleanup(x.srv.Close)
	return x
}

func exchangeForm(subject string, extra ...string) url.Values {
	f := url.Values{
		"grant_type":         {identity.GrantTypeTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {identity.TokenTypeJWT},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Add(extra[i], extra[i+1])
	}
	return f
}

// post sends a form to the exchange endpoint and decodes the JSON answer.
func post(t *testing.T, endpoint string, form url.Values) (int, map[string]any, http.Header, string) {
	t.Helper()
	resp, err := http.PostForm(endpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, raw)
	}
	return resp.StatusCode, body, resp.Header, string(raw)
}

func TestExchange(t *testing.T) {
	x := newExchangeEnv(t)
	now := x.clock.Now()
	ciMain := x.ci.mint(t, now, map[string]any{"sub": "repo:acme/payments:ref:refs/heads/main", "actor": "octocat"})
	alice := x.sso.mint(t, now, map[string]any{"sub": "u-1", "email": "alice@example.com", "realm_access": map[string]any{"roles": []string{"dba", "dev"}}})

	type want struct {
		status  int
		errCode string
		denied  bool // a token.exchange_denied event is expected
		// for 200:
		scope   string
		kind    identity.Kind
		subject string
		actor   string
		conns   []string
		groups  []string
		ttl     time.Duration
	}
	tests := []struct {
		name string
		form url.Values
		want want
	}{
		{"agent for a CI job", exchangeForm(ciMain),
			want{status: 200, scope: "read write", kind: identity.KindAgent, subject: "deployer", actor: "octocat", conns: []string{"pg-prod"}, ttl: 10 * time.Minute}},
		{"narrower scope", exchangeForm(ciMain, "scope", "read"),
			want{status: 200, scope: "read", kind: identity.KindAgent, subject: "deployer", actor: "octocat", conns: []string{"pg-prod"}, ttl: 10 * time.Minute}},
		{"our audience and resource", exchangeForm(ciMain, "audience", "gatehouse", "resource", "gatehouse", "requested_token_type", identity.TokenTypeJWT),
			want{status: 200, scope: "read write", kind: identity.KindAgent, subject: "deployer", actor: "octocat", conns: []string{"pg-prod"}, ttl: 10 * time.Minute}},
		{"user by group", exchangeForm(alice, "scope", "ddl"),
			want{status: 200, scope: "ddl", kind: identity.KindUser, subject: "alice@example.com", conns: []string{"pg-*"}, groups: []string{"dba", "dev"}, ttl: 15 * time.Minute}},
		{"scope beyond the rule", exchangeForm(ciMain, "scope", "read admin"), want{status: 400, errCode: "invalid_scope", denied: true}},
		{"unknown scope", exchangeForm(ciMain, "scope", "root"), want{status: 400, errCode: "invalid_scope"}},
		{"branch matches no rule", exchangeForm(x.ci.mint(t, now, map[string]any{"sub": "repo:acme/payments:ref:refs/heads/dev", "actor": "octocat"})), want{status: 400, errCode: "unauthorized_client", denied: true}},
		{"group matches no rule", exchangeForm(x.sso.mint(t, now, map[string]any{"email": "eve@example.com", "realm_access": map[string]any{"roles": []string{"dev"}}})), want{status: 400, errCode: "unauthorized_client", denied: true}},
		{"unverified email", exchangeForm(x.sso.mint(t, now, map[string]any{"email": "alice@example.com", "email_verified": false, "realm_access": map[string]any{"roles": []string{"dba"}}})), want{status: 400, errCode: "invalid_grant", denied: true}},
		{"missing on-behalf-of claim", exchangeForm(x.ci.mint(t, now, map[string]any{"sub": "repo:acme/payments:ref:refs/heads/main"})), want{status: 400, errCode: "invalid_grant", denied: true}},
		{"untrusted issuer", exchangeForm(x.rogue.mint(t, now, map[string]any{"sub": "repo:acme/payments:ref:refs/heads/main", "actor": "x"})), want{status: 400, errCode: "invalid_grant", denied: true}},
		{"expired subject token", exchangeForm(x.ci.mint(t, now, map[string]any{"sub": "repo:acme/payments:ref:refs/heads/main", "actor": "x", "exp": now.Add(-time.Hour).Unix()})), want{status: 400, errCode: "invalid_grant", denied: true}},
		{"subject token for another audience", exchangeForm(x.ci.mint(t, now, map[string]any{"sub": "repo:acme/payments:ref:refs/heads/main", "actor": "x", "aud": "vault"})), want{status: 400, errCode: "invalid_grant", denied: true}},
		{"subject token is garbage", exchangeForm("not.a.jwt"), want{status: 400, errCode: "invalid_grant", denied: true}},
		{"a Gatehouse token is no subject token", exchangeForm(mustIssue(t, x.svc)), want{status: 400, errCode: "invalid_grant", denied: true}},
		{"wrong grant type", func() url.Values { f := exchangeForm(ciMain); f.Set("grant_type", "client_credentials"); return f }(), want{status: 400, errCode: "unsupported_grant_type"}},
		{"no subject token", exchangeForm(""), want{status: 400, errCode: "invalid_request"}},
		{"bad subject token type", func() url.Values {
			f := exchangeForm(ciMain)
			f.Set("subject_token_type", "urn:ietf:params:oauth:token-type:saml2")
			return f
		}(), want{status: 400, errCode: "invalid_request"}},
		{"actor token", exchangeForm(ciMain, "actor_token", ciMain, "actor_token_type", identity.TokenTypeJWT), want{status: 400, errCode: "invalid_request"}},
		{"other audience", exchangeForm(ciMain, "audience", "billing"), want{status: 400, errCode: "invalid_target"}},
		{"saml requested", exchangeForm(ciMain, "requested_token_type", "urn:ietf:params:oauth:token-type:saml2"), want{status: 400, errCode: "invalid_request"}},
		{"scope twice", exchangeForm(ciMain, "scope", "read", "scope", "write"), want{status: 400, errCode: "invalid_request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x.events.reset()
			status, body, hdr, raw := post(t, x.srv.URL, tt.form)
			if status != tt.want.status || (tt.want.errCode != "" && body["error"] != tt.want.errCode) {
				t.Fatalf("status %d body %s, want %d %s", status, raw, tt.want.status, tt.want.errCode)
			}
			if hdr.Get("Cache-Control") != "no-store" || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("headers = %v", hdr)
			}
			if sub := tt.form.Get("subject_token"); sub != "" {
				for _, p := range splitDots(sub) {
					if len(p) > 8 && strings.Contains(raw, p) {
						t.Fatalf("response echoes the subject token: %s", raw)
					}
				}
			}
			if status != 200 {
				ev := x.events.last()
				if got := ev.Kind == identity.EventTokenExchangeDenied && ev.Reason != ""; got != tt.want.denied {
					t.Errorf("last event = %+v, want a denial event: %v", ev, tt.want.denied)
				}
				return
			}
			if body["issued_token_type"] != identity.TokenTypeJWT || body["token_type"] != "Bearer" || body["scope"] != tt.want.scope {
				t.Errorf("response = %s", raw)
			}
			if got := body["expires_in"].(float64); got != tt.want.ttl.Seconds() {
				t.Errorf("expires_in = %v, want %v", got, tt.want.ttl.Seconds())
			}
			c, err := x.svc.Verify(context.Background(), body["access_token"].(string))
			if err != nil {
				t.Fatalf("issued token does not verify: %v", err)
			}
			if c.Kind != tt.want.kind || c.Subject != tt.want.subject || c.Actor != tt.want.actor ||
				!slices.Equal(c.Connections, tt.want.conns) || !slices.Equal(c.Groups, tt.want.groups) || identity.FormatScopes(c.Scopes) != tt.want.scope {
				t.Errorf("claims = %+v", c)
			}
			if ev := x.events.last(); ev.Kind != identity.EventTokenExchange || ev.JTI != c.ID || ev.ExternalIssuer == "" || ev.Rule == "" {
				t.Errorf("event = %+v", ev)
			}
		})
	}
}

func mustIssue(t *testing.T, s *identity.Service) string {
	t.Helper()
	tok, _, err := s.Issue(context.Background(), agentReq)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestExchangeHTTP(t *testing.T) {
	x := newExchangeEnv(t)
	tok := x.ci.mint(t, x.clock.Now(), map[string]any{"sub": "repo:acme/payments:ref:refs/heads/main", "actor": "octocat"})
	t.Run("GET is refused", func(t *testing.T) {
		resp, err := http.Get(x.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET: %s Allow=%q", resp.Status, resp.Header.Get("Allow"))
		}
	})
	t.Run("JSON body is refused", func(t *testing.T) {
		resp, err := http.Post(x.srv.URL, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("JSON body: %s", resp.Status)
		}
	})
	t.Run("token in the URL is refused", func(t *testing.T) {
		status, body, _, _ := post(t, x.srv.URL+"?subject_token="+tok, exchangeForm(tok))
		if status != 400 || body["error"] != "invalid_request" {
			t.Errorf("token in URL: %d %v", status, body)
		}
	})
}

func TestVerifyOIDC(t *testing.T) {
	x := newExchangeEnv(t)
	ctx := context.Background()
	now := x.clock.Now()
	alice := x.sso.mint(t, now, map[string]any{"sub": "u-1", "email": "alice@example.com", "realm_access": map[string]any{"roles": []string{"dba"}}})

	c, err := x.svc.Verify(ctx, alice)
	if err != nil {
		t.Fatalf("Verify SSO token: %v", err)
	}
	if c.Kind != identity.KindUser || c.Subject != "alice@example.com" || !c.InGroup("dba") || !c.External ||
		!c.HasScope(identity.ScopeRead) || c.HasScope(identity.ScopeWrite) || !c.AllowsConnection("any") || c.Issuer != x.sso.URL() {
		t.Errorf("claims = %+v", c)
	}

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"exchange-only issuer is not a login", x.ci.mint(t, now, map[string]any{"sub": "repo:acme/x", "email": "a@example.com"}), identity.ErrWrongIssuer},
		{"unconfigured issuer", x.rogue.mint(t, now, map[string]any{"email": "a@example.com"}), identity.ErrWrongIssuer},
		{"expired", x.sso.mint(t, now, map[string]any{"email": "a@example.com", "exp": now.Add(-time.Minute).Unix()}), identity.ErrExpired},
		{"not yet valid", x.sso.mint(t, now, map[string]any{"email": "a@example.com", "nbf": now.Add(time.Hour).Unix()}), identity.ErrNotYetValid},
		{"wrong audience", x.sso.mint(t, now, map[string]any{"email": "a@example.com", "aud": []string{"billing"}}), identity.ErrWrongAudience},
		{"no exp", x.sso.mint(t, now, map[string]any{"email": "a@example.com", "exp": nil}), identity.ErrMalformed},
		{"alg none", forge(t, map[string]any{"alg": "none", "kid": "es-1"}, map[string]any{"iss": x.sso.URL(), "aud": "gatehouse", "exp": now.Add(time.Minute).Unix()}, func([]byte) []byte { return nil }), identity.ErrBadSignature},
		{"signed by the rogue issuer's key", x.rogue.mint(t, now, map[string]any{"iss": x.sso.URL(), "email": "a@example.com"}), identity.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := x.svc.Verify(ctx, tt.token); !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("revoked", func(t *testing.T) {
		if err := x.svc.Revoke(ctx, c.ID, c.ExpiresAt, "stolen laptop"); err != nil {
			t.Fatal(err)
		}
		if _, err := x.svc.Verify(ctx, alice); !errors.Is(err, identity.ErrRevoked) {
			t.Fatalf("Verify revoked SSO token: %v", err)
		}
	})
	t.Run("unknown kid refetches JWKS at most every 10s", func(t *testing.T) {
		x.clock.Advance(11 * time.Second)
		defer x.clock.Advance(-11 * time.Second)
		before := x.sso.jwksHits.Load()
		forged := forge(t, map[string]any{"alg": "ES256", "kid": "nope"}, map[string]any{"iss": x.sso.URL(), "aud": "gatehouse", "exp": now.Add(time.Minute).Unix()}, func([]byte) []byte { return make([]byte, 64) })
		for range 5 {
			if _, err := x.svc.Verify(ctx, forged); !errors.Is(err, identity.ErrUnknownKey) {
				t.Fatalf("Verify: %v, want ErrUnknownKey", err)
			}
		}
		if hits := x.sso.jwksHits.Load() - before; hits != 1 {
			t.Errorf("%d JWKS fetches for 5 forged kids within 10s", hits)
		}
	})
}
