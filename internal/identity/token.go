package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

const (
	// tokenType is the JOSE typ of Gatehouse tokens: RFC 9068 access
	// tokens, so they cannot be mistaken for ID tokens or other JWTs.
	tokenType = "at+jwt"
	// maxTokenLen bounds the work an unauthenticated caller can cause.
	maxTokenLen = 16 << 10
)

// b64 is strict base64url without padding: non-canonical encodings of the
// same bytes are refused, so a token has exactly one valid spelling.
var b64 = base64.RawURLEncoding.Strict()

// IssueRequest describes the token to issue.
type IssueRequest struct {
	Kind        Kind   // default KindAgent
	Subject     string // agent name, or user name for KindUser
	Actor       string // human the agent acts for (act.sub); agents only
	Email       string // users only
	Groups      []string
	Scopes      []Scope
	Connections []string
	TTL         time.Duration // 0 means Config.DefaultTTL; above MaxTTL is refused
}

// jwtHeader is the JOSE header. Crit is decoded only to refuse it: we
// understand no extensions (RFC 7515 §4.1.11).
type jwtHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit,omitempty"`
}

// jwtClaims is the payload of a Gatehouse token.
type jwtClaims struct {
	Issuer      string    `json:"iss"`
	Subject     string    `json:"sub"`
	Audience    audience  `json:"aud"`
	IssuedAt    int64     `json:"iat"`
	NotBefore   int64     `json:"nbf"`
	Expiry      int64     `json:"exp"`
	ID          string    `json:"jti"`
	Act         *actClaim `json:"act,omitempty"`
	Scope       string    `json:"scope,omitempty"` // space-separated, RFC 8693 §4.2
	Connections []string  `json:"connections,omitempty"`
	Kind        Kind      `json:"gh_kind"`
	Email       string    `json:"email,omitempty"`
	Groups      []string  `json:"groups,omitempty"`
}

// actClaim is RFC 8693 §4.1: the party acting is sub; act.sub is on whose
// behalf. For us: sub is the agent, act.sub the human.
type actClaim struct {
	Subject string `json:"sub"`
}

// audience decodes aud as a string or an array (RFC 7519 §4.1.3) and
// encodes a single value as a string.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// Issue signs a new token with the active key.
func (s *Service) Issue(ctx context.Context, req IssueRequest) (string, Claims, error) {
	raw, c, err := s.issue(req)
	if err != nil {
		return "", Claims{}, err
	}
	s.emit(ctx, Event{
		Kind: EventTokenIssue, Principal: c.Kind, Subject: c.Subject, Actor: c.Actor,
		JTI: c.ID, KeyID: c.KeyID, Scopes: c.Scopes, Connections: c.Connections, ExpiresAt: c.ExpiresAt,
	})
	return raw, c, nil
}

// issue builds and signs a token without emitting an event, for Issue and
// for token exchange (which reports one exchange event instead).
func (s *Service) issue(req IssueRequest) (string, Claims, error) {
	if req.Kind == "" {
		req.Kind = KindAgent
	}
	if !req.Kind.valid() {
		return "", Claims{}, fmt.Errorf("identity issue: %w: kind %q", ErrInvalidRequest, req.Kind)
	}
	if req.Subject == "" {
		return "", Claims{}, fmt.Errorf("identity issue: %w: empty subject", ErrInvalidRequest)
	}
	if req.Kind == KindUser && req.Actor != "" {
		return "", Claims{}, fmt.Errorf("identity issue: %w: a user token has no actor", ErrInvalidRequest)
	}
	scopes, err := normalizeScopes(req.Scopes)
	if err != nil {
		return "", Claims{}, fmt.Errorf("identity issue: %w", err)
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = s.cfg.DefaultTTL
	}
	if ttl < time.Second {
		return "", Claims{}, fmt.Errorf("identity issue: %w: ttl %v", ErrInvalidRequest, ttl)
	}
	if ttl > s.cfg.MaxTTL {
		return "", Claims{}, fmt.Errorf("identity issue: %w: %v > max_ttl %v", ErrTTLTooLong, ttl, s.cfg.MaxTTL)
	}
	key := s.keys.active()
	now := s.now().Truncate(time.Second) // NumericDate has whole seconds
	jc := jwtClaims{
		Issuer:      s.cfg.Issuer,
		Subject:     req.Subject,
		Audience:    audience{s.cfg.Audience},
		IssuedAt:    now.Unix(),
		NotBefore:   now.Unix(),
		Expiry:      now.Add(ttl).Unix(),
		ID:          rand.Text(), // 26 base32 characters: 130 random bits
		Scope:       FormatScopes(scopes),
		Connections: slices.Clone(req.Connections),
		Kind:        req.Kind,
		Email:       req.Email,
		Groups:      slices.Clone(req.Groups),
	}
	if req.Actor != "" {
		jc.Act = &actClaim{Subject: req.Actor}
	}
	raw, err := sign(key, jc)
	if err != nil {
		return "", Claims{}, err
	}
	return raw, jc.claims(key.kid, scopes), nil
}

func sign(key *signingKey, jc jwtClaims) (string, error) {
	hdr, err := json.Marshal(jwtHeader{Alg: "EdDSA", Kid: key.kid, Typ: tokenType})
	if err != nil {
		return "", fmt.Errorf("identity sign: header: %w", err)
	}
	payload, err := json.Marshal(jc)
	if err != nil {
		return "", fmt.Errorf("identity sign: claims: %w", err)
	}
	n := b64.EncodedLen(len(hdr)) + 1 + b64.EncodedLen(len(payload))
	buf := make([]byte, n, n+1+b64.EncodedLen(ed25519.SignatureSize))
	b64.Encode(buf, hdr)
	buf[b64.EncodedLen(len(hdr))] = '.'
	b64.Encode(buf[b64.EncodedLen(len(hdr))+1:], payload)
	sig := ed25519.Sign(key.priv, buf)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}

func (jc *jwtClaims) claims(kid string, scopes []Scope) Claims {
	c := Claims{
		Kind:        jc.Kind,
		Subject:     jc.Subject,
		Email:       jc.Email,
		Groups:      jc.Groups,
		Scopes:      scopes,
		Connections: jc.Connections,
		Issuer:      jc.Issuer,
		Audience:    jc.Audience,
		ID:          jc.ID,
		KeyID:       kid,
		IssuedAt:    time.Unix(jc.IssuedAt, 0),
		NotBefore:   time.Unix(jc.NotBefore, 0),
		ExpiresAt:   time.Unix(jc.Expiry, 0),
	}
	if jc.Act != nil {
		c.Actor = jc.Act.Subject
	}
	return c
}

// splitJWS splits a compact JWS into its three base64url parts.
func splitJWS(raw string) (hdr, payload, sig string, err error) {
	if len(raw) > maxTokenLen {
		return "", "", "", fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxTokenLen)
	}
	hdr, rest, ok1 := strings.Cut(raw, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return "", "", "", fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	return hdr, payload, sig, nil
}

// decodePart base64url-decodes one part and JSON-decodes it into v.
func decodePart(part string, v any) error {
	b, err := b64.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// peekIssuer reads iss from an unverified payload, only to choose which
// verifier checks the token.
func peekIssuer(payload string) (string, error) {
	var p struct {
		Issuer string `json:"iss"`
	}
	if err := decodePart(payload, &p); err != nil {
		return "", fmt.Errorf("%w: payload: not base64url JSON", ErrMalformed)
	}
	return p.Issuer, nil
}

// verifyOwn checks a token that claims Gatehouse as issuer.
// raw is the whole token; the other arguments are its parts (splitJWS).
func (s *Service) verifyOwn(raw, hdrPart, payloadPart, sigPart string) (Claims, error) {
	var hdr jwtHeader
	if err := decodePart(hdrPart, &hdr); err != nil {
		return Claims{}, fmt.Errorf("%w: header: not base64url JSON", ErrMalformed)
	}
	// Only EdDSA: this closes alg "none" and the HS256-with-public-key
	// confusion before any key is touched.
	if hdr.Alg != "EdDSA" {
		return Claims{}, fmt.Errorf("%w: algorithm not accepted (want EdDSA)", ErrBadSignature)
	}
	if len(hdr.Crit) > 0 {
		return Claims{}, fmt.Errorf("%w: crit header not supported", ErrMalformed)
	}
	if hdr.Typ != tokenType {
		return Claims{}, fmt.Errorf("%w: typ is not %s", ErrMalformed, tokenType)
	}
	key, ok := s.keys.lookup(hdr.Kid)
	if !ok {
		return Claims{}, fmt.Errorf("%w: kid not found", ErrUnknownKey)
	}
	// Length first: Decode panics when dst is too small.
	var sig [ed25519.SignatureSize]byte
	if b64.DecodedLen(len(sigPart)) != len(sig) {
		return Claims{}, fmt.Errorf("%w: signature is not %d bytes", ErrBadSignature, len(sig))
	}
	n, err := b64.Decode(sig[:], []byte(sigPart))
	if err != nil || n != len(sig) {
		return Claims{}, fmt.Errorf("%w: signature is not base64url", ErrBadSignature)
	}
	signingInput := raw[:len(hdrPart)+1+len(payloadPart)]
	if !ed25519.Verify(key.pub, []byte(signingInput), sig[:n]) {
		return Claims{}, ErrBadSignature
	}

	var jc jwtClaims
	if err := decodePart(payloadPart, &jc); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if jc.Issuer != s.cfg.Issuer {
		return Claims{}, ErrWrongIssuer
	}
	if jc.Subject == "" || jc.ID == "" || jc.Expiry == 0 || !jc.Kind.valid() {
		return Claims{}, fmt.Errorf("%w: missing sub, jti, exp or gh_kind", ErrMalformed)
	}
	if !slices.Contains(jc.Audience, s.cfg.Audience) {
		return Claims{}, ErrWrongAudience
	}
	if err := s.checkTimes(time.Unix(jc.Expiry, 0), time.Unix(jc.NotBefore, 0)); err != nil {
		return Claims{}, err
	}
	scopes, err := ParseScopes(jc.Scope)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return jc.claims(key.kid, scopes), nil
}

// checkTimes applies exp and nbf with the configured skew.
func (s *Service) checkTimes(exp, nbf time.Time) error {
	now := s.now()
	if !now.Before(exp.Add(s.cfg.ClockSkew)) {
		return fmt.Errorf("%w at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	if !nbf.IsZero() && now.Add(s.cfg.ClockSkew).Before(nbf) {
		return fmt.Errorf("%w before %s", ErrNotYetValid, nbf.UTC().Format(time.RFC3339))
	}
	return nil
}
