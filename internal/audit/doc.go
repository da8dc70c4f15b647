// Package audit is Gatehouse's tamper-evident log. Every event is a leaf of
// an RFC 6962 Merkle tree and carries a link to the leaf before it; the log
// signs checkpoints (tree size and root) in the sumdb note format, so Verify
// can prove that nothing was edited, removed, reordered or truncated.
//
// It is a core package: it imports store and nothing above it (no engine,
// gateway, api, cli or app package).
package audit
