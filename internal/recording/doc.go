// Package recording keeps per-session recordings: for SQL sessions each
// statement's normalised text, fingerprint, masked parameters, decision,
// timing and row count, written to the store in batches off the hot path,
// and read back by `gatehouse sessions list` and `gatehouse replay`. Core
// layer: it imports store only.
package recording
