package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/jackc/pgx/v5/pgconn"
)

// Dial failure reasons: DialError.Reason, and the label of the gateway's
// upstream dial failure metric.
const (
	ReasonUpstream    = "upstream"    // the upstream answered the login with an error of its own
	ReasonCredential  = "credential"  // the credential reference resolves to nothing
	ReasonUnreachable = "unreachable" // no connection to the upstream's address
	ReasonTLS         = "tls"         // TLS with the upstream failed
	ReasonNoAgent     = "no_agent"    // no agent serving the connection is connected
	ReasonDatabase    = "database"    // the connection does not serve the database
	ReasonOther       = "other"
)

// DialError is a failed upstream dial with what the client may be told.
// Message and Hint never carry a credential or the upstream's address:
// they are the upstream's own answer to the client's login, or a sentence
// naming the connection and the kind of failure. Err is the whole cause,
// for the gateway log.
type DialError struct {
	Connection string
	Reason     string
	// Code is the SQLSTATE for the client: the upstream's own for
	// ReasonUpstream.
	Code    string
	Message string
	Hint    string
	Err     error
}

func (e *DialError) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Err.Error()
}

func (e *DialError) Unwrap() error { return e.Err }

// SQLSTATEs of dial failures that are not the upstream's own answer
// (PostgreSQL docs, Appendix A).
const (
	codeUnableToConnect = "08001" // sqlclient_unable_to_establish_sqlconnection
	codeConnectFailure  = "08006" // connection_failure
	codeInvalidCatalog  = "3D000" // invalid_catalog_name
)

// credentialError says that c's password reference resolves to nothing.
func credentialError(c config.Connection, err error) *DialError {
	what := "it cannot be read"
	switch ref := c.Password; {
	case errors.Is(err, config.ErrSecretScheme):
		what = ref.Scheme() + ": references are not supported yet"
	case ref.Scheme() == "env":
		what = "env " + strings.TrimPrefix(string(ref), "env:") + " is empty"
		if errors.Is(err, config.ErrSecretUnset) {
			break
		}
	case ref.Scheme() == "file":
		what = "file " + strings.TrimPrefix(string(ref), "file:")
		if errors.Is(err, config.ErrSecretUnset) {
			what += " is empty"
		} else {
			what += " cannot be read"
		}
	}
	return &DialError{Connection: c.Name, Reason: ReasonCredential, Code: codeConnectFailure,
		Message: fmt.Sprintf("gatehouse: the credential for connection %s is not configured (%s)", c.Name, what),
		Hint:    "set it where the agent runs, then connect again; the gateway and agent warn at start about every credential that resolves empty",
		Err:     fmt.Errorf("connection %s: password: %w", c.Name, err)}
}

// classifyDial turns a pgconn connect error into a DialError. Only the
// upstream's ErrorResponse reaches the client as it was sent, with its
// SQLSTATE: it is the server's answer to what the client asked for (a
// database that does not exist, too many connections). A refusal of the
// agent's own login is said to be that, so the client does not take it
// for its token being wrong.
func classifyDial(name string, err error) *DialError {
	de := &DialError{Connection: name, Reason: ReasonOther, Code: codeUnableToConnect, Err: err,
		Message: fmt.Sprintf("gatehouse: cannot connect to the upstream of connection %s", name),
		Hint:    "the agent's log has the reason"}
	var pe *pgconn.PgError
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var nerr net.Error
	switch {
	case errors.As(err, &pe):
		de.Reason, de.Code, de.Message, de.Hint = ReasonUpstream, pe.Code, pe.Message, pe.Hint
		if strings.HasPrefix(pe.Code, "28") { // invalid authorization: the agent's credential
			de.Message = fmt.Sprintf("gatehouse: the upstream of connection %s refused the agent's login: %s", name, pe.Message)
			de.Hint = fmt.Sprintf("the credential configured for connection %s is wrong for its upstream", name)
		}
	case errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &hne), strings.Contains(err.Error(), "tls error"):
		de.Reason = ReasonTLS
		de.Message = fmt.Sprintf("gatehouse: TLS with the upstream of connection %s failed", name)
		de.Hint = "check the connection's tls_mode and ca_file; the agent's log has the reason"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		de.Reason = ReasonUnreachable
		de.Message = fmt.Sprintf("gatehouse: the upstream of connection %s did not answer in time", name)
	case errors.Is(err, syscall.ECONNREFUSED):
		de.Reason = ReasonUnreachable
		de.Message = fmt.Sprintf("gatehouse: the upstream of connection %s refused the network connection (is it running at the configured address?)", name)
	case errors.As(err, new(*net.DNSError)), errors.As(err, new(*net.OpError)):
		de.Reason = ReasonUnreachable
		de.Message = fmt.Sprintf("gatehouse: the agent cannot reach the upstream of connection %s", name)
	}
	return de
}
