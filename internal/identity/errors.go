package identity

import "errors"

// Verification and issuance failures. Callers test them with errors.Is to say
// why a token was refused; the wrapped messages add detail but never contain
// the token itself.
var (
	// ErrMalformed: not a compact JWS, or claims that cannot be decoded or
	// are missing.
	ErrMalformed = errors.New("malformed token")
	// ErrBadSignature: the signature does not verify, or the token names an
	// algorithm that is not accepted (alg none, HS*, RS* for our own tokens).
	ErrBadSignature = errors.New("bad signature")
	// ErrUnknownKey: the kid is not one of the issuer's keys, even after a
	// reload.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrExpired: exp is past, beyond the allowed clock skew.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf is in the future, beyond the allowed clock skew.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrWrongIssuer: iss is neither Gatehouse nor a configured OIDC issuer
	// accepted for this use.
	ErrWrongIssuer = errors.New("untrusted issuer")
	// ErrWrongAudience: aud does not contain the expected audience.
	ErrWrongAudience = errors.New("wrong audience")
	// ErrRevoked: the token's jti has been revoked.
	ErrRevoked = errors.New("token revoked")
	// ErrIssuerUnavailable: an external issuer's discovery document or JWKS
	// could not be fetched, so its tokens cannot be checked right now.
	ErrIssuerUnavailable = errors.New("issuer unavailable")

	// ErrUnknownScope: a scope other than read, write, ddl or admin.
	ErrUnknownScope = errors.New("unknown scope")
	// ErrTTLTooLong: the requested lifetime exceeds Config.MaxTTL.
	ErrTTLTooLong = errors.New("ttl exceeds maximum")
	// ErrInvalidRequest: an IssueRequest or Revoke call that cannot be
	// honoured (no subject, bad kind, empty jti, ...).
	ErrInvalidRequest = errors.New("invalid request")
)
