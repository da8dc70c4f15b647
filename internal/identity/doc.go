// Package identity issues and verifies Gatehouse's short-lived tokens
// (Ed25519-signed JWTs naming an agent, the human it acts for, its scopes and
// connections), verifies tokens from configured OIDC issuers, exchanges
// external tokens for Gatehouse tokens (RFC 8693), rotates signing keys and
// checks revocation on every verification. Recheck and the revocation
// generation let open sessions recheck expiry and revocation per request
// without verifying a signature again.
//
// It is a core package: it may import internal/store but never an engine, the
// gateway, api, cli, app, audit or policy packages (deps_test.go enforces it).
// Auditing is the caller's job, through Options.OnEvent.
package identity
