// Package gateway is the pipeline every request goes through, whatever
// protocol it came in on: identity (verify the token and its scope for the
// connection; on an open session, recheck its expiry and revocation before
// every request, and watch it so that idle sessions end too) → policy (one
// Cedar decision per resource touched) → audit (the decision is logged, in
// order, before anything is forwarded). Engines parse their protocol into a
// Request and act on the Verdict; they never decide on their own. It
// imports core packages only, never an engine.
package gateway
