package identity

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults for the zero values of Config.
const (
	DefaultIssuer            = "gatehouse"
	DefaultAudience          = "gatehouse"
	DefaultTTL               = 15 * time.Minute
	DefaultMaxTTL            = time.Hour
	DefaultClockSkew         = 30 * time.Second
	DefaultRevocationRefresh = time.Second
)

// Config is the identity part of the gateway's YAML. Zero values take the
// defaults above.
type Config struct {
	// Issuer is the iss of Gatehouse tokens.
	Issuer string `yaml:"issuer"`
	// Audience is the aud of Gatehouse tokens, and the only audience the
	// token exchange endpoint issues for.
	Audience string `yaml:"audience"`
	// DefaultTTL is the lifetime of a token when the request names none.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// MaxTTL is the longest lifetime Issue grants; longer requests are
	// refused. Superseded signing keys are kept this long (plus skew) so the
	// tokens they signed keep verifying.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// ClockSkew is the slack allowed on exp and nbf.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// RevocationRefresh is how often Run reloads revocations from the store,
	// so a revoke by another process takes effect within it.
	RevocationRefresh time.Duration `yaml:"revocation_refresh"`
	// OIDC lists the external issuers Gatehouse trusts: for humans logging
	// in directly (AcceptDirect) and as subject token issuers in exchange.
	OIDC []OIDCIssuer `yaml:"oidc"`
	// TokenExchange holds the RFC 8693 mapping rules, tried in order; the
	// first match wins.
	TokenExchange []ExchangeRule `yaml:"token_exchange"`
}

// OIDCIssuer is one trusted external issuer, found by OIDC discovery.
type OIDCIssuer struct {
	// Issuer is the exact iss value and discovery base URL. It must be
	// https, or http on a loopback address (tests).
	Issuer string `yaml:"issuer"`
	// Audience must appear in the token's aud: the client_id for ID tokens,
	// the resource's audience for access tokens. Required, so that a token
	// minted for another service cannot be replayed here.
	Audience string `yaml:"audience"`
	// JWKSURL skips discovery when set.
	JWKSURL string `yaml:"jwks_url"`
	// AcceptDirect lets Verify accept this issuer's tokens as human users.
	// Without it the issuer is trusted only as a token exchange subject
	// (workload issuers such as CI must not log in as users).
	AcceptDirect bool `yaml:"accept_direct"`
	// EmailClaim and GroupsClaim name the claims mapped to Claims.Email and
	// Claims.Groups (defaults "email" and "groups"). A dotted name such as
	// "realm_access.roles" walks nested objects when no claim has that
	// literal name.
	EmailClaim  string `yaml:"email_claim"`
	GroupsClaim string `yaml:"groups_claim"`
	// Scopes and Connections are what a directly accepted user token
	// carries (defaults: read, and "*"); policy still decides.
	Scopes      []Scope  `yaml:"scopes"`
	Connections []string `yaml:"connections"`
	// Algorithms narrows the accepted JWS algorithms (default: RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA).
	// Symmetric and "none" are never accepted.
	Algorithms []string `yaml:"algorithms"`
}

// ExchangeRule maps a verified subject token to the Gatehouse token issued
// for it at POST /v1/token.
type ExchangeRule struct {
	// Name identifies the rule in audit events.
	Name string `yaml:"name"`
	// Issuer is the subject token's iss; it must be listed in Config.OIDC.
	Issuer string `yaml:"issuer"`
	// Match maps claim names (sub, aud, email, groups, any other) to a
	// value: exact, or a glob with * and ?. All entries must match; a list
	// claim matches when any element does. At least one entry is required,
	// because an issuer such as a public CI signs tokens for everyone.
	Match map[string]string `yaml:"match"`
	// Agent, when set, issues an agent token with this name.
	Agent string `yaml:"agent"`
	// UserClaim, when set instead of Agent, issues a user token named by
	// this claim of the subject token (e.g. "email").
	UserClaim string `yaml:"user_claim"`
	// OnBehalfOfClaim names the subject token claim that becomes act.sub on
	// an agent token; the exchange is refused if the claim is missing.
	OnBehalfOfClaim string `yaml:"on_behalf_of_claim"`
	// Connections the issued token allows.
	Connections []string `yaml:"connections"`
	// Scopes the rule may grant; a requested scope must be a subset, and
	// no request means all of them.
	Scopes []Scope `yaml:"scopes"`
	// TTL of the issued token (default Config.DefaultTTL, at most MaxTTL).
	TTL time.Duration `yaml:"ttl"`
}

var defaultOIDCAlgs = []string{
	string(jose.RS256), string(jose.RS384), string(jose.RS512),
	string(jose.PS256), string(jose.PS384), string(jose.PS512),
	string(jose.ES256), string(jose.ES384), string(jose.ES512),
	string(jose.EdDSA),
}

// normalize fills defaults and checks the configuration, returning a copy.
func (c Config) normalize() (Config, error) {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = DefaultTTL
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = max(DefaultMaxTTL, c.DefaultTTL)
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.RevocationRefresh == 0 {
		c.RevocationRefresh = DefaultRevocationRefresh
	}
	var errs []error
	if c.DefaultTTL < 0 || c.MaxTTL < 0 || c.DefaultTTL > c.MaxTTL {
		errs = append(errs, fmt.Errorf("default_ttl %v and max_ttl %v: need 0 < default_ttl <= max_ttl", c.DefaultTTL, c.MaxTTL))
	}
	if c.ClockSkew < 0 || c.ClockSkew > 5*time.Minute {
		errs = append(errs, fmt.Errorf("clock_skew %v: must be between 0 and 5m", c.ClockSkew))
	}
	if c.RevocationRefresh < 0 {
		errs = append(errs, fmt.Errorf("revocation_refresh %v: must be positive", c.RevocationRefresh))
	}

	c.OIDC = slices.Clone(c.OIDC)
	seen := map[string]bool{}
	for i := range c.OIDC {
		o := &c.OIDC[i]
		if err := o.normalize(); err != nil {
			errs = append(errs, fmt.Errorf("oidc[%d]: %w", i, err))
			continue
		}
		if o.Issuer == c.Issuer {
			errs = append(errs, fmt.Errorf("oidc[%d]: issuer %q is Gatehouse's own issuer", i, o.Issuer))
		}
		if seen[o.Issuer] {
			errs = append(errs, fmt.Errorf("oidc[%d]: issuer %q listed twice", i, o.Issuer))
		}
		seen[o.Issuer] = true
	}

	c.TokenExchange = slices.Clone(c.TokenExchange)
	for i := range c.TokenExchange {
		r := &c.TokenExchange[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("rule%d", i)
		}
		if err := r.normalize(c, seen); err != nil {
			errs = append(errs, fmt.Errorf("token_exchange[%d] (%s): %w", i, r.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("identity config: %w", err)
	}
	return c, nil
}

func (o *OIDCIssuer) normalize() error {
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Host == "" {
		return fmt.Errorf("issuer %q is not a URL", o.Issuer)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return fmt.Errorf("issuer %q must use https (http only on loopback)", o.Issuer)
	}
	if o.Audience == "" {
		return fmt.Errorf("issuer %q: audience is required", o.Issuer)
	}
	if o.EmailClaim == "" {
		o.EmailClaim = "email"
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = "groups"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []Scope{ScopeRead}
	}
	s, err := normalizeScopes(o.Scopes)
	if err != nil {
		return fmt.Errorf("scopes: %w", err)
	}
	o.Scopes = s
	if len(o.Connections) == 0 {
		o.Connections = []string{"*"}
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = defaultOIDCAlgs
	}
	for _, a := range o.Algorithms {
		if !slices.Contains(defaultOIDCAlgs, a) {
			return fmt.Errorf("algorithm %q not accepted (asymmetric JWS algorithms only)", a)
		}
	}
	return nil
}

func (r *ExchangeRule) normalize(c Config, issuers map[string]bool) error {
	if !issuers[r.Issuer] {
		return fmt.Errorf("issuer %q is not listed under oidc", r.Issuer)
	}
	if len(r.Match) == 0 {
		return errors.New("match needs at least one claim")
	}
	if (r.Agent == "") == (r.UserClaim == "") {
		return errors.New("set exactly one of agent and user_claim")
	}
	if r.UserClaim != "" && r.OnBehalfOfClaim != "" {
		return errors.New("on_behalf_of_claim applies to agent tokens only")
	}
	if len(r.Scopes) == 0 {
		return errors.New("scopes: at least one is required")
	}
	s, err := normalizeScopes(r.Scopes)
	if err != nil {
		return fmt.Errorf("scopes: %w", err)
	}
	r.Scopes = s
	if r.TTL == 0 {
		r.TTL = c.DefaultTTL
	}
	if r.TTL < 0 || r.TTL > c.MaxTTL {
		return fmt.Errorf("ttl %v: must be positive and at most max_ttl %v", r.TTL, c.MaxTTL)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
