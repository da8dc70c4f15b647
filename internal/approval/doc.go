// Package approval holds risky operations until a human approves that exact
// operation: pending requests for a protocol-neutral Operation (who, where,
// the action, the exact text and parameters) whose fingerprint, computed
// here over all of it, binds the approval; reviewers, decided by an
// Authorizer (Cedar, wired in by app), and N-of-M approval; expiry; single
// use or a time window; just-in-time access grants; and notifications (a
// signed generic webhook, Slack-compatible messages). State lives in the
// store, so it survives restarts and is shared by gateway nodes. Core
// layer: it imports store and audit, never policy, an engine, gateway,
// api, cli or app.
package approval
