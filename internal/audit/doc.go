// Package audit is Gatehouse's tamper-evident log. Every event is a leaf of
// an RFC 6962 Merkle tree and carries a link to the leaf before it; the log
// signs checkpoints (tree size and root) in the sumdb note format, copies
// them out of the store (a checkpoint file, a witness), and signs only a
// stored tree that extends its last trusted checkpoint, so Verify can prove
// that nothing was edited, removed, reordered or truncated, even by someone
// who can rewrite the store.
//
// It is a core package: it imports store and nothing above it (no engine,
// gateway, api, cli or app package).
package audit
