package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

var agentReq = identity.IssueRequest{
	Subject:     "report-bot",
	Actor:       "alice@example.com",
	Scopes:      []identity.Scope{identity.ScopeRead, identity.ScopeWrite},
	Connections: []string{"pg-prod", "pg-staging-*"},
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	e := newEnv(t)
	s := e.service(identity.Config{})
	ctx := context.Background()

	tok, issued, err := s.Issue(ctx, agentReq)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	got, err := s.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !slices.Equal(got.Scopes, issued.Scopes) || got.ID != issued.ID || !got.ExpiresAt.Equal(issued.ExpiresAt) {
		t.Errorf("Verify = %+v, Issue said %+v", got, issued)
	}
	if got.Kind != identity.KindAgent || got.Subject != "report-bot" || got.Actor != "alice@example.com" {
		t.Errorf("principal = %s %q acting for %q", got.Kind, got.Subject, got.Actor)
	}
	if got.Issuer != "gatehouse" || !slices.Equal(got.Audience, []string{"gatehouse"}) {
		t.Errorf("iss/aud = %q %q", got.Issuer, got.Audience)
	}
	if want := e.clock.Now().Add(15 * time.Minute); !got.ExpiresAt.Equal(want) {
		t.Errorf("default TTL: exp %v, want %v", got.ExpiresAt, want)
	}
	if !got.HasScope(identity.ScopeWrite) || got.HasScope(identity.ScopeDDL) {
		t.Errorf("HasScope wrong for %v", got.Scopes)
	}
	for conn, want := range map[string]bool{"pg-prod": true, "pg-staging-eu": true, "pg-prodx": false, "mysql": false} {
		if got.AllowsConnection(conn) != want {
			t.Errorf("AllowsConnection(%q) = %v", conn, !want)
		}
	}

	// The wire format other parties rely on.
	h, c := decodeHeader(t, tok), decodeClaims(t, tok)
	if h["alg"] != "EdDSA" || h["typ"] != "at+jwt" || h["kid"] != s.ActiveKeyID() {
		t.Errorf("header = %v", h)
	}
	if c["scope"] != "read write" || c["gh_kind"] != "agent" || c["sub"] != "report-bot" {
		t.Errorf("claims = %v", c)
	}
	if act, _ := c["act"].(map[string]any); act["sub"] != "alice@example.com" {
		t.Errorf("act = %v", c["act"])
	}
	for _, k := range []string{"iss", "aud", "iat", "nbf", "exp", "jti"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claim %s missing", k)
		}
	}
	if jti, _ := c["jti"].(string); len(jti) < 22 { // ≥ 128 bits in base32
		t.Errorf("jti %q too short", jti)
	}
}

func TestUserToken(t *testing.T) {
	e := newEnv(t)
	s := e.service(identity.Config{})
	tok, _, err := s.Issue(context.Background(), identity.IssueRequest{
		Kind: identity.KindUser, Subject: "bob@example.com", Email: "bob@example.com",
		Groups: []string{"dba"}, Scopes: []identity.Scope{identity.ScopeRead}, Connections: []string{"*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != identity.KindUser || !c.InGroup("dba") || !c.AllowsConnection("anything") || c.Actor != "" {
		t.Errorf("user claims = %+v", c)
	}
}

func TestVerifyRejects(t *testing.T) {
	e := newEnv(t)
	s := e.service(identity.Config{})
	ctx := context.Background()
	good, _, err := s.Issue(ctx, agentReq)
	if err != nil {
		t.Fatal(err)
	}
	kid := s.ActiveKeyID()
	priv := e.key(kid)
	pub := priv.Public().(ed25519.PublicKey)
	now := e.clock.Now().Unix()

	hdr := func(mut func(map[string]any)) map[string]any {
		h := map[string]any{"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}
		if mut != nil {
			mut(h)
		}
		return h
	}
	claims := func(mut func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": "gatehouse", "aud": "gatehouse", "sub": "report-bot", "gh_kind": "agent",
			"iat": now, "nbf": now, "exp": now + 600, "jti": "j-" + rand.Text(), "scope": "read",
		}
		if mut != nil {
			mut(c)
		}
		return c
	}
	edSign := func(in []byte) []byte { return ed25519.Sign(priv, in) }
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	parts := splitDots(good)

	tests := []struct {
		name    string
		token   string
		advance time.Duration // clock moves before verifying
		want    error         // nil: accepted
	}{
		{name: "forged with the real key is accepted", token: forge(t, hdr(nil), claims(nil), edSign)},
		{name: "expired", token: good, advance: 15*time.Minute + 31*time.Second, want: identity.ErrExpired},
		{name: "expired within skew", token: good, advance: 15*time.Minute + 29*time.Second},
		{name: "nbf in the future", token: forge(t, hdr(nil), claims(func(c map[string]any) { c["nbf"] = now + 300 }), edSign), want: identity.ErrNotYetValid},
		{name: "nbf within skew", token: forge(t, hdr(nil), claims(func(c map[string]any) { c["nbf"] = now + 20 }), edSign)},
		{name: "wrong audience", token: forge(t, hdr(nil), claims(func(c map[string]any) { c["aud"] = "billing" }), edSign), want: identity.ErrWrongAudience},
		{name: "audience list containing ours", token: forge(t, hdr(nil), claims(func(c map[string]any) { c["aud"] = []string{"x", "gatehouse"} }), edSign)},
		{name: "wrong issuer", token: forge(t, hdr(nil), claims(func(c map[string]any) { c["iss"] = "evil" }), edSign), want: identity.ErrWrongIssuer},
		{name: "tampered payload", token: parts[0] + "." + b64JSON(t, claims(func(c map[string]any) { c["scope"] = "read write ddl admin" })) + "." + parts[2], want: identity.ErrBadSignature},
		{name: "tampered signature", token: parts[0] + "." + parts[1] + "." + flip(parts[2]), want: identity.ErrBadSignature},
		{name: "signed by another key under our kid", token: forge(t, hdr(nil), claims(nil), func(in []byte) []byte { return ed25519.Sign(otherPriv, in) }), want: identity.ErrBadSignature},
		{name: "alg none", token: forge(t, hdr(func(h map[string]any) { h["alg"] = "none" }), claims(nil), func([]byte) []byte { return nil }), want: identity.ErrBadSignature},
		{name: "HS256 keyed with the public key", token: forge(t, hdr(func(h map[string]any) { h["alg"] = "HS256" }), claims(nil), func(in []byte) []byte {
			m := hmac.New(sha256.New, pub)
			m.Write(in)
			return m.Sum(nil)
		}), want: identity.ErrBadSignature},
		{name: "RS256 header", token: forge(t, hdr(func(h map[string]any) { h["alg"] = "RS256" }), claims(nil), edSign), want: identity.ErrBadSignature},
		{name: "unknown kid", token: forge(t, hdr(func(h map[string]any) { h["kid"] = "20990101T000000.000000Z-000000000000" }), claims(nil), edSign), want: identity.ErrUnknownKey},
		{name: "no kid", token: forge(t, hdr(func(h map[string]any) { delete(h, "kid") }), claims(nil), edSign), want: identity.ErrUnknownKey},
		{name: "typ JWT", token: forge(t, hdr(func(h map[string]any) { h["typ"] = "JWT" }), claims(nil), edSign), want: identity.ErrMalformed},
		{name: "crit header", token: forge(t, hdr(func(h map[string]any) { h["crit"] = []string{"b64"} }), claims(nil), edSign), want: identity.ErrMalformed},
		{name: "unknown scope in a signed token", token: forge(t, hdr(nil), claims(func(c map[string]any) { c["scope"] = "read root" }), edSign), want: identity.ErrMalformed},
		{name: "missing jti", token: forge(t, hdr(nil), claims(func(c map[string]any) { delete(c, "jti") }), edSign), want: identity.ErrMalformed},
		{name: "bad kind", token: forge(t, hdr(nil), claims(func(c map[string]any) { c["gh_kind"] = "robot" }), edSign), want: identity.ErrMalformed},
		{name: "long signature", token: parts[0] + "." + parts[1] + "." + parts[2] + parts[2], want: identity.ErrBadSignature},
		{name: "short signature", token: parts[0] + "." + parts[1] + "." + parts[2][:40], want: identity.ErrBadSignature},
		{name: "signature with padding", token: good + "==", want: identity.ErrBadSignature},
		{name: "two parts", token: parts[0] + "." + parts[1], want: identity.ErrMalformed},
		{name: "four parts", token: good + ".x", want: identity.ErrMalformed},
		{name: "not base64", token: "!!.??.**", want: identity.ErrMalformed},
		{name: "empty", token: "", want: identity.ErrMalformed},
		{name: "huge", token: strings.Repeat("a", 20000) + ".b.c", want: identity.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			defer e.clock.Advance(-tt.advance)
			_, err := s.Verify(ctx, tt.token)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify: err = %v, want %v", err, tt.want)
			}
			if err != nil {
				for _, p := range splitDots(tt.token) {
					if len(p) > 8 && strings.Contains(err.Error(), p) {
						t.Errorf("error %q contains part of the token", err)
					}
				}
			}
		})
	}
}

// flip changes the first character of a base64url string.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestIssueRefuses(t *testing.T) {
	e := newEnv(t)
	s := e.service(identity.Config{MaxTTL: time.Hour})
	tests := []struct {
		name string
		req  identity.IssueRequest
		want error
	}{
		{"ttl above max", identity.IssueRequest{Subject: "a", Scopes: []identity.Scope{"read"}, TTL: 61 * time.Minute}, identity.ErrTTLTooLong},
		{"ttl at max", identity.IssueRequest{Subject: "a", Scopes: []identity.Scope{"read"}, TTL: time.Hour}, nil},
		{"negative ttl", identity.IssueRequest{Subject: "a", TTL: -time.Minute}, identity.ErrInvalidRequest},
		{"unknown scope", identity.IssueRequest{Subject: "a", Scopes: []identity.Scope{"read", "superuser"}}, identity.ErrUnknownScope},
		{"no subject", identity.IssueRequest{Scopes: []identity.Scope{"read"}}, identity.ErrInvalidRequest},
		{"bad kind", identity.IssueRequest{Kind: "robot", Subject: "a"}, identity.ErrInvalidRequest},
		{"user with actor", identity.IssueRequest{Kind: identity.KindUser, Subject: "a", Actor: "b"}, identity.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.Issue(context.Background(), tt.req)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Issue: err = %v, want %v", err, tt.want)
			}
		})
	}
	_, err := identity.ParseScopes("read  admin read")
	if err != nil {
		t.Errorf("ParseScopes: %v", err)
	}
	if _, err := identity.ParseScopes("read sudo"); !errors.Is(err, identity.ErrUnknownScope) || !strings.Contains(err.Error(), "sudo") {
		t.Errorf("ParseScopes(sudo): %v, want a clear ErrUnknownScope", err)
	}
}

func TestRevocation(t *testing.T) {
	ctx := context.Background()
	t.Run("local revoke takes effect at once", func(t *testing.T) {
		e := newEnv(t)
		s := e.service(identity.Config{})
		tok, c, _ := s.Issue(ctx, agentReq)
		if err := s.Revoke(ctx, c.ID, c.ExpiresAt, "leaked in a log"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(ctx, tok); !errors.Is(err, identity.ErrRevoked) {
			t.Fatalf("Verify after revoke: %v, want ErrRevoked", err)
		}
		if ev := e.events.last(); ev.Kind != identity.EventTokenRevoke || ev.JTI != c.ID || ev.Reason != "leaked in a log" {
			t.Errorf("event = %+v", ev)
		}
		other, _, _ := s.Issue(ctx, agentReq)
		if _, err := s.Verify(ctx, other); err != nil {
			t.Errorf("unrelated token: %v", err)
		}
	})
	t.Run("revoke by another process via the store", func(t *testing.T) {
		e := newEnv(t)
		gateway := e.service(identity.Config{})
		cli := e.service(identity.Config{}) // the CLI on the gateway host
		tok, c, _ := gateway.Issue(ctx, agentReq)
		if err := cli.Revoke(ctx, c.ID, time.Time{}, "operator"); err != nil {
			t.Fatal(err)
		}
		if _, err := gateway.Verify(ctx, tok); err != nil {
			t.Fatalf("before refresh the gateway has not seen it yet: %v", err)
		}
		if err := gateway.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := gateway.Verify(ctx, tok); !errors.Is(err, identity.ErrRevoked) {
			t.Fatalf("after refresh: %v, want ErrRevoked", err)
		}
		// A new process loads revocations at start.
		if _, err := e.service(identity.Config{}).Verify(ctx, tok); !errors.Is(err, identity.ErrRevoked) {
			t.Fatalf("new process: %v, want ErrRevoked", err)
		}
	})
	t.Run("Run refreshes within the interval", func(t *testing.T) {
		e := newEnv(t)
		gateway := e.service(identity.Config{RevocationRefresh: 20 * time.Millisecond})
		cli := e.service(identity.Config{})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- gateway.Run(runCtx) }()
		defer func() { cancel(); <-done }()
		tok, c, _ := gateway.Issue(ctx, agentReq)
		if err := cli.Revoke(ctx, c.ID, c.ExpiresAt, "operator"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := gateway.Verify(ctx, tok)
			if errors.Is(err, identity.ErrRevoked) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("revocation not picked up by Run: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.service(identity.Config{MaxTTL: time.Hour})
	oldTok, _, _ := s.Issue(ctx, agentReq)
	oldKID := s.ActiveKeyID()

	newKID, err := s.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKID || s.ActiveKeyID() != newKID {
		t.Fatalf("Rotate: new kid %q, active %q, old %q", newKID, s.ActiveKeyID(), oldKID)
	}
	newTok, newClaims, _ := s.Issue(ctx, agentReq)
	if newClaims.KeyID != newKID || decodeHeader(t, newTok)["kid"] != newKID {
		t.Errorf("new token kid = %q, want %q", newClaims.KeyID, newKID)
	}
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if _, err := s.Verify(ctx, tok); err != nil {
			t.Errorf("%s token after rotation: %v", name, err)
		}
	}
	if got := e.events.kinds(); !slices.Contains(got, identity.EventKeyRotate) {
		t.Errorf("events %v lack key.rotate", got)
	}

	// The CLI rotates in another process; the gateway learns the new kid
	// when the first token signed with it arrives.
	e.clock.Advance(2 * time.Second) // past the reload rate limit
	cli := e.service(identity.Config{MaxTTL: time.Hour})
	cliKID, err := cli.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cliTok, _, _ := cli.Issue(ctx, agentReq)
	if c, err := s.Verify(ctx, cliTok); err != nil || c.KeyID != cliKID {
		t.Fatalf("token under a kid rotated by another process: %+v, %v", c, err)
	}

	// Once every token the first key signed has expired (max TTL + skew +
	// the key poll interval), the next rotation prunes it.
	e.clock.Advance(time.Hour + 31*time.Second + 31*time.Second)
	if _, err := s.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.keyDir, oldKID+".pem")); !os.IsNotExist(err) {
		t.Errorf("old key file still there: %v", err)
	}
	if _, err := s.Verify(ctx, oldTok); !errors.Is(err, identity.ErrUnknownKey) {
		t.Errorf("token of a pruned key: %v, want ErrUnknownKey", err)
	}
}

func TestJWKS(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.service(identity.Config{})
	tok1, _, _ := s.Issue(ctx, agentReq)
	if _, err := s.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	tok2, _, _ := s.Issue(ctx, agentReq)

	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatalf("JWKS does not parse: %v", err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(set.Keys))
	}
	for _, raw := range []string{tok1, tok2} {
		parsed, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatalf("go-jose parse: %v", err)
		}
		keys := set.Key(parsed.Headers[0].KeyID)
		if len(keys) != 1 {
			t.Fatalf("kid %q not in JWKS", parsed.Headers[0].KeyID)
		}
		k := keys[0]
		if k.Algorithm != "EdDSA" || k.Use != "sig" || !k.IsPublic() {
			t.Errorf("jwk = alg %q use %q public %v", k.Algorithm, k.Use, k.IsPublic())
		}
		if _, ok := k.Key.(ed25519.PublicKey); !ok {
			t.Errorf("jwk key is %T", k.Key)
		}
		var std jwt.Claims
		var extra struct {
			Scope string `json:"scope"`
		}
		if err := parsed.Claims(k.Key, &std, &extra); err != nil {
			t.Fatalf("go-jose verify: %v", err)
		}
		if err := std.ValidateWithLeeway(jwt.Expected{Issuer: "gatehouse", AnyAudience: jwt.Audience{"gatehouse"}, Time: e.clock.Now()}, 0); err != nil {
			t.Errorf("go-jose validate: %v", err)
		}
		if extra.Scope != "read write" {
			t.Errorf("scope = %q", extra.Scope)
		}
	}
	if strings.Contains(string(s.JWKS()), `"d"`) {
		t.Error("JWKS contains private key material")
	}
	if !strings.Contains(string(s.JWKS()), `"kty":"OKP"`) || !strings.Contains(string(s.JWKS()), `"crv":"Ed25519"`) {
		t.Errorf("JWKS = %s", s.JWKS())
	}
}

func TestKeyFiles(t *testing.T) {
	e := newEnv(t)
	s := e.service(identity.Config{})
	kid := s.ActiveKeyID()
	if _, err := s.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(e.keyDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v, want 0700", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(e.keyDir)
	if len(entries) != 2 {
		t.Errorf("key dir has %d entries, want 2 (no temp files left)", len(entries))
	}
	for _, de := range entries {
		fi, _ := de.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", de.Name(), fi.Mode().Perm())
		}
		data, _ := os.ReadFile(filepath.Join(e.keyDir, de.Name()))
		if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----") {
			t.Errorf("%s is not PEM PKCS#8", de.Name())
		}
	}

	// A key file others can read is refused, as OpenSSH does.
	if err := os.Chmod(filepath.Join(e.keyDir, kid+".pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	fresh := e.service(identity.Config{})
	tok := forge(t, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}, map[string]any{
		"iss": "gatehouse", "aud": "gatehouse", "sub": "x", "gh_kind": "agent", "jti": "j",
		"exp": e.clock.Now().Unix() + 60,
	}, func(in []byte) []byte { return ed25519.Sign(e.key(kid), in) })
	if _, err := fresh.Verify(context.Background(), tok); !errors.Is(err, identity.ErrUnknownKey) {
		t.Errorf("token of a world-readable key: %v, want ErrUnknownKey", err)
	}
}

func TestEventsNeverCarryTokens(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.service(identity.Config{})
	tok, c, _ := s.Issue(ctx, agentReq)
	_ = s.Revoke(ctx, c.ID, c.ExpiresAt, "test")
	_, _ = s.Rotate(ctx)
	want := []identity.EventKind{identity.EventTokenIssue, identity.EventTokenRevoke, identity.EventKeyRotate}
	if got := e.events.kinds(); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	ev := e.events.events[0]
	if ev.Subject != "report-bot" || ev.Actor != "alice@example.com" || ev.JTI != c.ID || len(ev.Scopes) != 2 || len(ev.Connections) != 2 {
		t.Errorf("issue event = %+v", ev)
	}
	for _, ev := range e.events.events {
		for _, p := range splitDots(tok) {
			if strings.Contains(strings.Join([]string{ev.Subject, ev.Actor, ev.JTI, ev.Reason, ev.KeyID}, " "), p) {
				t.Errorf("event %+v contains the token", ev)
			}
		}
	}
}

func TestConfigRefused(t *testing.T) {
	okIssuer := identity.OIDCIssuer{Issuer: "https://idp.example.com", Audience: "gatehouse"}
	okRule := identity.ExchangeRule{Issuer: okIssuer.Issuer, Match: map[string]string{"sub": "x"}, Agent: "a", Scopes: []identity.Scope{"read"}}
	with := func(mut func(*identity.Config)) identity.Config {
		c := identity.Config{OIDC: []identity.OIDCIssuer{okIssuer}, TokenExchange: []identity.ExchangeRule{okRule}}
		c.TokenExchange[0].Match = maps.Clone(okRule.Match)
		mut(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  identity.Config
		want string // substring of the error; "" means accepted
	}{
		{"defaults", identity.Config{}, ""},
		{"valid oidc and rule", with(func(*identity.Config) {}), ""},
		{"default ttl above max", identity.Config{DefaultTTL: 2 * time.Hour, MaxTTL: time.Hour}, "default_ttl"},
		{"huge skew", identity.Config{ClockSkew: time.Hour}, "clock_skew"},
		{"http issuer off loopback", with(func(c *identity.Config) { c.OIDC[0].Issuer = "http://idp.example.com"; c.TokenExchange = nil }), "https"},
		{"issuer without audience", with(func(c *identity.Config) { c.OIDC[0].Audience = "" }), "audience is required"},
		{"symmetric algorithm", with(func(c *identity.Config) { c.OIDC[0].Algorithms = []string{"HS256"} }), "HS256"},
		{"rule for unlisted issuer", with(func(c *identity.Config) { c.TokenExchange[0].Issuer = "https://other" }), "not listed"},
		{"rule without match", with(func(c *identity.Config) { c.TokenExchange[0].Match = nil }), "match"},
		{"rule with agent and user", with(func(c *identity.Config) { c.TokenExchange[0].UserClaim = "email" }), "exactly one"},
		{"rule with unknown scope", with(func(c *identity.Config) { c.TokenExchange[0].Scopes = []identity.Scope{"root"} }), "unknown scope"},
		{"rule ttl above max", with(func(c *identity.Config) { c.TokenExchange[0].TTL = 2 * time.Hour }), "max_ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := identity.New(context.Background(), tt.cfg, t.TempDir(), newMemRevocations(), identity.Options{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
