// Package mask finds sensitive values (payment cards, emails, SSNs, phone
// numbers, IBANs, IP addresses, cloud and SaaS credentials, JWTs, private
// keys) in data flowing back to agents and rewrites them by rule.
//
// It is a pure core package: it imports nothing of Gatehouse, does no I/O
// beyond the io.Reader/io.Writer it is handed, and keeps no global state, so
// every engine (PostgreSQL, MySQL, HTTP, SSH, MCP) can use it.
package mask
