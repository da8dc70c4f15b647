package agent

import (
	"context"
	"errors"
	"net"
)

// ErrUnknownConnection is returned for a connection this agent does not serve.
var ErrUnknownConnection = errors.New("no such connection")

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
