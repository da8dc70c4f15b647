// Package approval holds risky operations until a human approves that exact
// operation: pending requests bound to a principal, a connection and a
// statement fingerprint; reviewers and N-of-M approval; expiry; single use or
// a time window; just-in-time access grants; and notifications (a signed
// generic webhook, Slack-compatible messages). State lives in the store, so
// it survives restarts and is shared by gateway nodes. Core layer: it
// imports store and audit, never an engine, gateway, api, cli or app.
package approval
