// Package sqlguard classifies PostgreSQL statements for policy from a real
// parse (pg_query, the PostgreSQL parser), never from patterns over SQL text:
// statement class, tables, columns, functions, risk flags and the (action,
// table) accesses the policy engine decides. Analyzer caches one analysis per
// statement shape, keyed by a lexical normalisation that falls back to a full
// parse whenever it is unsure. docs/sql-analysis.md has the rules.
//
// It sits in the core layer and imports no other Gatehouse package
// (deps_test.go checks): engines call it, it never calls them.
package sqlguard
