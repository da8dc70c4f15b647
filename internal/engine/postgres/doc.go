// Package postgres is the PostgreSQL wire-protocol engine: clients (psql,
// pgx, lib/pq, pgbench) connect to it with a Gatehouse token as their
// password; it governs every statement through the gateway pipeline,
// reaches the upstream through an agent.Dialer (so it never holds the
// upstream password), masks result values and records the session.
//
// A session reads as steps: startup → authenticate → connect upstream →
// make client ready → relay. It imports core packages and gateway, never
// another engine, api, cli or app.
package postgres
