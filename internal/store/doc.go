// Package store persists Gatehouse's state: the audit log and its signed
// checkpoints, token revocations, and (later) approvals, grants and sessions.
// One interface, two implementations: embedded SQLite (the default) and
// PostgreSQL (shared by several gateway nodes). It is a core package and
// imports no other Gatehouse package.
package store
