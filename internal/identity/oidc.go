package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// jwksMinRefetch bounds how often an unknown kid makes us fetch an
	// issuer's JWKS, so forged kids cannot turn us into a load generator.
	jwksMinRefetch = 10 * time.Second
	// maxDiscoveryBody caps discovery and JWKS responses.
	maxDiscoveryBody = 1 << 20
)

// oidcVerifier verifies tokens of one external issuer: discovery document,
// then JWKS, cached and refetched when a kid is unknown. It is written on
// go-jose rather than go-oidc so that skew, clock, errors and alg allow-list
// are the same as for Gatehouse tokens.
type oidcVerifier struct {
	cfg    OIDCIssuer
	algs   []jose.SignatureAlgorithm
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex // guards the fields below; held across fetches
	jwksURL   string
	keys      []jose.JSONWebKey
	lastFetch time.Time
	lastErr   error // of the last fetch, repeated while refetching is held off
}

func newOIDCVerifier(cfg OIDCIssuer, client *http.Client, now func() time.Time) *oidcVerifier {
	v := &oidcVerifier{cfg: cfg, client: client, now: now, jwksURL: cfg.JWKSURL}
	for _, a := range cfg.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	return v
}

// externalClaims is a verified external token's payload.
type externalClaims map[string]any

// verify checks signature, iss, aud, exp and nbf and returns the claims.
func (v *oidcVerifier) verify(ctx context.Context, raw, hdrPart string, skew time.Duration) (externalClaims, error) {
	var hdr jwtHeader
	if err := decodePart(hdrPart, &hdr); err != nil {
		return nil, fmt.Errorf("%w: header: not base64url JSON", ErrMalformed)
	}
	// Checked here as well as by go-jose so the error says why.
	if !slices.Contains(v.algs, jose.SignatureAlgorithm(hdr.Alg)) {
		return nil, fmt.Errorf("%w: algorithm not accepted for this issuer", ErrBadSignature)
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want one signature", ErrMalformed)
	}
	keys, err := v.keysFor(ctx, jws.Signatures[0].Header.KeyID, hdr.Alg)
	if err != nil {
		return nil, err
	}
	var payload []byte
	for _, k := range keys {
		if payload, err = jws.Verify(k.Key); err == nil {
			break
		}
	}
	if payload == nil {
		return nil, ErrBadSignature
	}

	claims := externalClaims{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if claims.str("iss") != v.cfg.Issuer {
		return nil, ErrWrongIssuer
	}
	if !slices.Contains(claims.strs("aud"), v.cfg.Audience) {
		return nil, ErrWrongAudience
	}
	exp, ok := claims.time("exp")
	if !ok {
		return nil, fmt.Errorf("%w: no exp", ErrMalformed)
	}
	now := v.now()
	if !now.Before(exp.Add(skew)) {
		return nil, fmt.Errorf("%w at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	if nbf, ok := claims.time("nbf"); ok && now.Add(skew).Before(nbf) {
		return nil, fmt.Errorf("%w before %s", ErrNotYetValid, nbf.UTC().Format(time.RFC3339))
	}
	return claims, nil
}

// keysFor returns the candidate keys for kid (every key of a matching alg
// when the token names no kid), fetching the JWKS when none is cached.
func (v *oidcVerifier) keysFor(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	match := func() []jose.JSONWebKey {
		var out []jose.JSONWebKey
		for _, k := range v.keys {
			if k.Use != "" && k.Use != "sig" {
				continue
			}
			if (kid == "" || k.KeyID == kid) && (k.Algorithm == "" || k.Algorithm == alg) {
				out = append(out, k)
			}
		}
		return out
	}
	if ks := match(); len(ks) > 0 {
		return ks, nil
	}
	if !v.lastFetch.IsZero() && v.now().Sub(v.lastFetch) < jwksMinRefetch {
		if v.lastErr != nil {
			return nil, v.lastErr
		}
		return nil, fmt.Errorf("%w: kid not in issuer's JWKS", ErrUnknownKey)
	}
	v.lastErr = v.fetchLocked(ctx)
	if v.lastErr != nil {
		return nil, v.lastErr
	}
	if ks := match(); len(ks) > 0 {
		return ks, nil
	}
	return nil, fmt.Errorf("%w: kid not in issuer's JWKS", ErrUnknownKey)
}

// fetchLocked runs discovery (once) and fetches the JWKS.
func (v *oidcVerifier) fetchLocked(ctx context.Context) error {
	v.lastFetch = v.now()
	if v.jwksURL == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		u := strings.TrimSuffix(v.cfg.Issuer, "/") + "/.well-known/openid-configuration"
		if err := v.getJSON(ctx, u, &doc); err != nil {
			return fmt.Errorf("%w: discovery: %v", ErrIssuerUnavailable, err)
		}
		// OpenID Connect Discovery 1.0 §4.3: the document's issuer must be
		// exactly the one we asked, or another issuer could be substituted.
		if doc.Issuer != v.cfg.Issuer {
			return fmt.Errorf("%w: discovery names issuer %q", ErrIssuerUnavailable, doc.Issuer)
		}
		if doc.JWKSURI == "" {
			return fmt.Errorf("%w: discovery has no jwks_uri", ErrIssuerUnavailable)
		}
		v.jwksURL = doc.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := v.getJSON(ctx, v.jwksURL, &set); err != nil {
		return fmt.Errorf("%w: jwks: %v", ErrIssuerUnavailable, err)
	}
	keys := set.Keys[:0]
	for _, k := range set.Keys {
		if k.Valid() && k.IsPublic() {
			keys = append(keys, k)
		}
	}
	v.keys = keys
	return nil
}

func (v *oidcVerifier) getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBody+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > maxDiscoveryBody {
		return fmt.Errorf("GET %s: response larger than %d bytes", url, maxDiscoveryBody)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// lookup finds a claim by its literal name, else by walking a dotted path
// through nested objects ("realm_access.roles"). Literal first, because
// namespaced claims such as "https://example.com/groups" contain dots.
func (c externalClaims) lookup(name string) (any, bool) {
	if v, ok := c[name]; ok {
		return v, true
	}
	var cur any = map[string]any(c)
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// str returns a string (or number) claim, "" when absent or of another type.
func (c externalClaims) str(name string) string {
	v, _ := c.lookup(name)
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// strs returns a claim that may be one string or a list of strings.
func (c externalClaims) strs(name string) []string {
	v, _ := c.lookup(name)
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// time returns a NumericDate claim (seconds, possibly fractional).
func (c externalClaims) time(name string) (time.Time, bool) {
	n, ok := c[name].(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// email returns the email claim unless the issuer says it is unverified
// (some IdPs let users set any address; trusting it would let them pose as
// someone else).
func (c externalClaims) email(name string) string {
	if v, ok := c["email_verified"].(bool); ok && !v {
		return ""
	}
	return c.str(name)
}

// userClaims maps a directly accepted external token to a user principal.
func (v *oidcVerifier) userClaims(c externalClaims) (Claims, error) {
	email := c.email(v.cfg.EmailClaim)
	subject := email
	if subject == "" {
		subject = c.str("sub")
	}
	if subject == "" {
		return Claims{}, fmt.Errorf("%w: neither %s nor sub", ErrMalformed, v.cfg.EmailClaim)
	}
	out := Claims{
		Kind:        KindUser,
		Subject:     subject,
		Email:       email,
		Groups:      c.strs(v.cfg.GroupsClaim),
		Scopes:      slices.Clone(v.cfg.Scopes),
		Connections: slices.Clone(v.cfg.Connections),
		Issuer:      v.cfg.Issuer,
		Audience:    c.strs("aud"),
		ID:          c.str("jti"),
		External:    true,
	}
	out.ExpiresAt, _ = c.time("exp")
	out.IssuedAt, _ = c.time("iat")
	out.NotBefore, _ = c.time("nbf")
	return out, nil
}
