package agent

import (
	"context"
	"errors"
	"net"
)

// ErrUnknownConnection is returned for a connection this agent does not serve.
var ErrUnknownConnection = errors.New("no such connection")

// ErrAgentLost is returned (wrapped, naming the agent) by reads and writes
// on an upstream connection whose agent went away mid-session: its tunnel
// closed or stopped answering. Engines tell the client so and end the
// session with that reason.
var ErrAgentLost = errors.New("agent went away")

// ErrNoAgent is returned by a dial when no connected agent serves the
// connection.
var ErrNoAgent = errors.New("no agent serving the connection is connected")

// PostgresParams are what the client asked for at startup, filtered by the
// engine to parameters that are safe to pass upstream.
type PostgresParams struct {
	Database string
	// Runtime holds startup parameters such as application_name,
	// client_encoding and DateStyle.
	Runtime map[string]string
}

// PostgresConn is an upstream PostgreSQL connection past authentication,
// idle (the upstream's ReadyForQuery has been consumed).
type PostgresConn struct {
	Conn            net.Conn
	PID             uint32
	SecretKey       []byte
	ParameterStatus map[string]string
	TxStatus        byte
}

// Dialer is the seam between the gateway's engines and the agent that
// holds the credentials.
type Dialer interface {
	// DialPostgres connects and authenticates to the named connection.
	DialPostgres(ctx context.Context, connection string, p PostgresParams) (*PostgresConn, error)
	// CancelPostgres asks the upstream to cancel the query running on the
	// backend identified by pid and secret.
	CancelPostgres(ctx context.Context, connection string, pid uint32, secret []byte) error
}
