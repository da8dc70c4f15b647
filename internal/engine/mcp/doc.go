// Package mcp is the MCP engine: a Streamable HTTP endpoint (/mcp, served on
// the API listener) whose tools let an AI agent reach infrastructure through
// Gatehouse, and the stdio bridge that `gatehouse mcp` runs in front of it.
//
// A tool call reads as steps: verify the bearer token → decide mcp:call on
// Tool::"<connection>/<tool>" with the call's arguments in the policy
// context, audited with the MCP client, agent, human and masked arguments →
// run. The SQL tools run their SQL as an in-process wire client of the
// PostgreSQL engine (with the caller's token as the password), so each
// statement is analysed, decided, held for approval, masked, audited and
// recorded by exactly the code that serves psql.
//
// It imports core packages and gateway, never another engine, api, cli or
// app: app hands it the PostgreSQL engine's ServeInternal as a function.
package mcp
