package postgres

import (
	"context"
	"errors"
	"net"
)

// errCallEnded ends an in-process session (ServeInternal) whose caller, an
// MCP tool call, has finished: the session ended because its client did,
// not because the gateway is shutting down.
var errCallEnded = errors.New("client terminated (the MCP call ended)")

// internalContext is the context an in-process session runs under: it
// ends with the caller's, with errCallEnded as the cause, so the session's
// end reason says what happened (endedBy). The returned func releases it.
func internalContext(ctx context.Context) (context.Context, func()) {
	ictx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { cancel(errCallEnded) })
	return ictx, func() { stop(); cancel(errCallEnded) }
}

// protocolOf is the protocol a session is audited and recorded under: the
// MCP tools' SQL sessions reach the engine in process, and are MCP's.
func protocolOf(c net.Conn) string {
	if _, ok := c.(internalConn); ok {
		return "mcp"
	}
	return "postgres"
}
