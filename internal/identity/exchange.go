package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"time"
)

// RFC 8693 §2.1 and §3 identifiers.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

const maxExchangeBody = 64 << 10

// ExchangeHandler serves POST /v1/token, the RFC 8693 token exchange: a
// subject token from a trusted issuer (Config.OIDC), mapped by the first
// matching Config.TokenExchange rule, becomes a Gatehouse token. The subject
// token is the only credential; there is no client authentication.
func (s *Service) ExchangeHandler() http.Handler { return exchangeHandler{s} }

type exchangeHandler struct{ s *Service }

var _ http.Handler = exchangeHandler{}

// exchangeResponse is RFC 8693 §2.2.1.
type exchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
}

// oauthError is RFC 6749 §5.2. Descriptions are ours, never the token.
type oauthError struct {
	status int
	Code   string `json:"error"`
	Desc   string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Desc }

func oauthErr(status int, code, format string, args ...any) *oauthError {
	return &oauthError{status: status, Code: code, Desc: fmt.Sprintf(format, args...)}
}

func (h exchangeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// RFC 6749 §5.1: token responses must not be cached.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	resp, err := h.s.exchange(r.Context(), w, r)
	if err != nil {
		var oe *oauthError
		if !errors.As(err, &oe) {
			oe = oauthErr(http.StatusInternalServerError, "server_error", "internal error")
			h.s.log.Error("identity: token exchange", "err", err)
		}
		if oe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		writeJSON(w, oe.status, oe)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// exchange runs one token exchange: parse the request, verify the subject
// token, find the rule, check scopes, issue.
func (s *Service) exchange(ctx context.Context, w http.ResponseWriter, r *http.Request) (*exchangeResponse, error) {
	if r.Method != http.MethodPost {
		return nil, oauthErr(http.StatusMethodNotAllowed, "invalid_request", "use POST")
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxExchangeBody)
	if err := r.ParseForm(); err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "cannot parse form body")
	}
	// Only the body counts: a token in the URL would end up in access logs.
	f := r.PostForm
	if r.URL.Query().Has("subject_token") {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "subject_token must be in the body, not the URL")
	}
	if g := f.Get("grant_type"); g != GrantTypeTokenExchange {
		return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be %s", GrantTypeTokenExchange)
	}
	for _, p := range []string{"grant_type", "subject_token", "subject_token_type", "scope", "requested_token_type"} {
		if len(f[p]) > 1 {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "%s given more than once", p)
		}
	}
	raw := f.Get("subject_token")
	if raw == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "subject_token is required")
	}
	switch f.Get("subject_token_type") {
	case TokenTypeJWT, TokenTypeIDToken, TokenTypeAccessToken:
	default:
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "subject_token_type must be a JWT, ID token or access token type")
	}
	if f.Has("actor_token") {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "actor_token is not supported")
	}
	switch f.Get("requested_token_type") {
	case "", TokenTypeJWT, TokenTypeAccessToken:
	default:
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "only %s tokens are issued", TokenTypeJWT)
	}
	for _, a := range slices.Concat(f["audience"], f["resource"]) {
		if a != s.cfg.Audience {
			return nil, oauthErr(http.StatusBadRequest, "invalid_target", "audience and resource may only be %q", s.cfg.Audience)
		}
	}
	requested, err := ParseScopes(f.Get("scope"))
	if err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_scope", "%v", err)
	}

	v, ext, err := s.verifySubject(ctx, raw)
	if err != nil {
		s.emit(ctx, Event{Kind: EventTokenExchangeDenied, Reason: err.Error()})
		if errors.Is(err, ErrIssuerUnavailable) {
			return nil, oauthErr(http.StatusServiceUnavailable, "temporarily_unavailable", "subject token issuer unavailable")
		}
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "subject token refused: %v", err)
	}
	denied := func(oe *oauthError, rule string) error {
		s.emit(ctx, Event{
			Kind: EventTokenExchangeDenied, ExternalIssuer: v.cfg.Issuer, ExternalSubject: ext.str("sub"),
			Rule: rule, Scopes: requested, Reason: oe.Desc,
		})
		return oe
	}

	rule := s.matchRule(v.cfg.Issuer, ext)
	if rule == nil {
		return nil, denied(oauthErr(http.StatusBadRequest, "unauthorized_client", "no token exchange rule matches the subject token"), "")
	}
	scopes := rule.Scopes
	if len(requested) > 0 {
		for _, sc := range requested {
			if !slices.Contains(rule.Scopes, sc) {
				return nil, denied(oauthErr(http.StatusBadRequest, "invalid_scope", "scope %q not allowed by rule %s", sc, rule.Name), rule.Name)
			}
		}
		scopes = requested
	}
	req := IssueRequest{Scopes: scopes, Connections: rule.Connections, TTL: rule.TTL}
	if rule.Agent != "" {
		req.Kind, req.Subject = KindAgent, rule.Agent
		if rule.OnBehalfOfClaim != "" {
			if req.Actor = ext.str(rule.OnBehalfOfClaim); req.Actor == "" {
				return nil, denied(oauthErr(http.StatusBadRequest, "invalid_grant", "subject token has no %s claim", rule.OnBehalfOfClaim), rule.Name)
			}
		}
	} else {
		req.Kind, req.Subject = KindUser, ext.str(rule.UserClaim)
		if rule.UserClaim == v.cfg.EmailClaim {
			req.Subject = ext.email(rule.UserClaim) // same email_verified rule as Verify
		}
		if req.Subject == "" {
			return nil, denied(oauthErr(http.StatusBadRequest, "invalid_grant", "subject token has no %s claim", rule.UserClaim), rule.Name)
		}
		req.Email = ext.email(v.cfg.EmailClaim)
		req.Groups = ext.strs(v.cfg.GroupsClaim)
	}
	token, c, err := s.issue(req)
	if err != nil {
		return nil, fmt.Errorf("issue for rule %s: %w", rule.Name, err)
	}
	s.emit(ctx, Event{
		Kind: EventTokenExchange, Principal: c.Kind, Subject: c.Subject, Actor: c.Actor,
		JTI: c.ID, KeyID: c.KeyID, Scopes: c.Scopes, Connections: c.Connections, ExpiresAt: c.ExpiresAt,
		ExternalIssuer: v.cfg.Issuer, ExternalSubject: ext.str("sub"), Rule: rule.Name,
	})
	return &exchangeResponse{
		AccessToken:     token,
		IssuedTokenType: TokenTypeJWT,
		TokenType:       "Bearer",
		ExpiresIn:       int64(c.ExpiresAt.Sub(c.IssuedAt) / time.Second),
		Scope:           FormatScopes(c.Scopes),
	}, nil
}

// verifySubject verifies a subject token against the trusted issuer its iss
// names, including revocation of its jti.
func (s *Service) verifySubject(ctx context.Context, raw string) (*oidcVerifier, externalClaims, error) {
	hdr, payload, _, err := splitJWS(raw)
	if err != nil {
		return nil, nil, err
	}
	iss, err := peekIssuer(payload)
	if err != nil {
		return nil, nil, err
	}
	v, ok := s.oidc[iss]
	if !ok {
		return nil, nil, ErrWrongIssuer
	}
	ext, err := v.verify(ctx, raw, hdr, s.cfg.ClockSkew)
	if err != nil {
		return nil, nil, err
	}
	if jti := ext.str("jti"); jti != "" && s.rev.revoked(jti, s.now()) {
		return nil, nil, ErrRevoked
	}
	return v, ext, nil
}

// matchRule returns the first rule for issuer whose every match entry
// matches the claims.
func (s *Service) matchRule(issuer string, c externalClaims) *ExchangeRule {
	for i := range s.cfg.TokenExchange {
		r := &s.cfg.TokenExchange[i]
		if r.Issuer != issuer {
			continue
		}
		ok := true
		for name, pattern := range r.Match {
			if !slices.ContainsFunc(c.values(name), func(v string) bool { return globMatch(pattern, v) }) {
				ok = false
				break
			}
		}
		if ok {
			return r
		}
	}
	return nil
}

// values returns a claim as strings for matching: a string, number or bool,
// or each such element of a list.
func (c externalClaims) values(name string) []string {
	v, ok := c.lookup(name)
	if !ok {
		return nil
	}
	one := func(v any) (string, bool) {
		switch v := v.(type) {
		case string:
			return v, true
		case json.Number:
			return v.String(), true
		case bool:
			return fmt.Sprint(v), true
		}
		return "", false
	}
	if l, ok := v.([]any); ok {
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := one(e); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := one(v); ok {
		return []string{s}
	}
	return nil
}
