package identity

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Options are a Service's dependencies beyond its configuration. Nil fields
// take the documented defaults.
type Options struct {
	// Now is the clock (default time.Now); tests replace it.
	Now func() time.Time
	// OnEvent, if set, is called synchronously after each issue, revoke,
	// rotation and exchange, for the audit log. Events never contain a token.
	OnEvent func(ctx context.Context, e Event)
	// HTTPClient fetches OIDC discovery documents and JWKS (default: a
	// client with a 10 s timeout).
	HTTPClient *http.Client
	// Logger receives warnings (default: discard).
	Logger *slog.Logger
}

// EventKind names what happened.
type EventKind string

const (
	EventTokenIssue          EventKind = "token.issue"
	EventTokenRevoke         EventKind = "token.revoke"
	EventKeyRotate           EventKind = "key.rotate"
	EventTokenExchange       EventKind = "token.exchange"
	EventTokenExchangeDenied EventKind = "token.exchange_denied"
)

// Event is reported through Options.OnEvent. Fields that do not apply to a
// kind are empty.
type Event struct {
	Kind        EventKind
	Time        time.Time
	Principal   Kind   // kind of the issued token's principal
	Subject     string // agent or user the token names
	Actor       string // human an agent acts for
	JTI         string
	KeyID       string
	Scopes      []Scope
	Connections []string
	ExpiresAt   time.Time
	// For token exchange: the subject token's issuer and sub, and the rule
	// that matched.
	ExternalIssuer  string
	ExternalSubject string
	Rule            string
	// Reason of a revoke, or why an exchange was denied.
	Reason string
}

// Service issues, verifies and revokes tokens. It is safe for concurrent use.
type Service struct {
	cfg     Config
	now     func() time.Time
	onEvent func(context.Context, Event)
	log     *slog.Logger

	keys  *keyring
	store RevocationStore
	rev   *revocations
	oidc  map[string]*oidcVerifier // by issuer
}

// New builds a Service. keyDir holds the signing keys (normally
// <data dir>/keys); it and a first key are created if missing. Revocations
// are loaded from rev before New returns, so they hold from the first
// request; call Run to keep them fresh.
func New(ctx context.Context, cfg Config, keyDir string, rev RevocationStore, opts Options) (*Service, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if rev == nil {
		return nil, fmt.Errorf("identity: nil revocation store")
	}
	s := &Service{
		cfg:     cfg,
		now:     opts.Now,
		onEvent: opts.OnEvent,
		log:     opts.Logger,
		store:   rev,
		rev:     newRevocations(),
		oidc:    map[string]*oidcVerifier{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	for _, o := range cfg.OIDC {
		s.oidc[o.Issuer] = newOIDCVerifier(o, client, s.now)
	}
	// Old keys must outlive every token they signed: a token issued just
	// before a rotation lives MaxTTL, and is accepted ClockSkew longer.
	s.keys, err = newKeyring(keyDir, cfg.MaxTTL+cfg.ClockSkew, s.now, s.log)
	if err != nil {
		return nil, err
	}
	if err := s.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("identity: initial %w", err)
	}
	return s, nil
}

// Verify checks a bearer token on every request: a Gatehouse token (by iss)
// or a token of an OIDC issuer configured with accept_direct, which maps to
// a user. Errors wrap the Err* sentinels and never contain the token.
func (s *Service) Verify(ctx context.Context, raw string) (Claims, error) {
	hdr, payload, sig, err := splitJWS(raw)
	if err != nil {
		return Claims{}, fmt.Errorf("identity verify: %w", err)
	}
	iss, err := peekIssuer(payload)
	if err != nil {
		return Claims{}, fmt.Errorf("identity verify: %w", err)
	}
	var c Claims
	if iss == s.cfg.Issuer {
		c, err = s.verifyOwn(raw, hdr, payload, sig)
	} else if v, ok := s.oidc[iss]; ok && v.cfg.AcceptDirect {
		var ext externalClaims
		if ext, err = v.verify(ctx, raw, hdr, s.cfg.ClockSkew); err == nil {
			c, err = v.userClaims(ext)
		}
	} else {
		err = ErrWrongIssuer
	}
	if err != nil {
		return Claims{}, fmt.Errorf("identity verify: %w", err)
	}
	if c.ID != "" && s.rev.revoked(c.ID, s.now()) {
		return Claims{}, fmt.Errorf("identity verify: %w", ErrRevoked)
	}
	return c, nil
}

// Rotate makes a new active signing key. Tokens signed with older keys
// verify until they expire; those keys are then pruned.
func (s *Service) Rotate(ctx context.Context) (kid string, err error) {
	key, err := s.keys.rotate()
	if err != nil {
		return "", fmt.Errorf("identity rotate: %w", err)
	}
	s.emit(ctx, Event{Kind: EventKeyRotate, KeyID: key.kid})
	return key.kid, nil
}

// ActiveKeyID is the kid new tokens are signed with.
func (s *Service) ActiveKeyID() string { return s.keys.active().kid }

// JWKS returns the public keys as a JWK Set (RFC 7517; OKP Ed25519 keys with
// use "sig" and alg "EdDSA"), to serve at /.well-known/jwks.json.
func (s *Service) JWKS() []byte { return s.keys.set.Load().jwks }

// Run refreshes revocations every Config.RevocationRefresh and reloads the
// key directory every 30 s (so a rotation by the CLI is used for signing),
// until ctx is done. Failures are logged and retried; the last good state
// stays in force meanwhile.
func (s *Service) Run(ctx context.Context) error {
	revTick := time.NewTicker(s.cfg.RevocationRefresh)
	defer revTick.Stop()
	keyTick := time.NewTicker(keyPollInterval)
	defer keyTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-revTick.C:
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("identity: revocation refresh failed", "err", err)
			}
		case <-keyTick.C:
			if err := s.keys.reload(); err != nil {
				s.log.Warn("identity: key reload failed", "err", err)
			}
		}
	}
}

func (s *Service) emit(ctx context.Context, e Event) {
	if s.onEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	s.onEvent(ctx, e)
}
