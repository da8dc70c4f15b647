package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Agent serves connections from its own configuration. It is safe for
// concurrent use.
type Agent struct {
	conns  map[string]config.Connection
	logger *slog.Logger
	// Secrets reads credential references; nil reads env: and file:
	// references (and literals) with config.Secret.Resolve.
	Secrets SecretResolver
}

var _ Dialer = (*Agent)(nil)

// New builds an agent serving conns.
func New(conns []config.Connection, logger *slog.Logger) *Agent {
	a := &Agent{conns: map[string]config.Connection{}, logger: logger}
	for _, c := range conns {
		a.conns[c.Name] = c
	}
	return a
}

func (a *Agent) connection(name, typ string) (config.Connection, error) {
	c, ok := a.conns[name]
	if !ok || c.Type != typ {
		return c, fmt.Errorf("%w: %q", ErrUnknownConnection, name)
	}
	return c, nil
}

// pgConfig builds the pgconn config for c. The password is resolved here,
// inside the agent, and only ever handed to pgconn.
func (a *Agent) pgConfig(ctx context.Context, c config.Connection, database string) (*pgconn.Config, error) {
	host, port, err := net.SplitHostPort(c.Address)
	if err != nil {
		return nil, fmt.Errorf("connection %s: address: %w", c.Name, err)
	}
	mode := c.TLSMode
	if mode == "" {
		mode = "prefer"
	}
	dsn := fmt.Sprintf("host=%s port=%s user=%s sslmode=%s connect_timeout=10", quoteDSN(host), port, quoteDSN(c.User), mode)
	if c.CAFile != "" {
		dsn += " sslrootcert=" + quoteDSN(c.CAFile)
	}
	if database == "" {
		database = c.Database
	}
	if database != "" {
		dsn += " dbname=" + quoteDSN(database)
	}
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", c.Name, err)
	}
	// ParseConfig also reads PG* environment variables and ~/.pgpass; the
	// connection's config must be the only source of credentials and
	// session settings, so drop what came from the host.
	cfg.Password = ""
	cfg.RuntimeParams = map[string]string{}
	if c.Password != "" {
		pw, err := a.secret(ctx, c.Password)
		if err != nil {
			return nil, credentialError(c, err)
		}
		cfg.Password = pw
	}
	return cfg, nil
}

func quoteDSN(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// DialPostgres performs startup and authentication (SCRAM-SHA-256, md5 or
// password, with TLS as configured) and hijacks the idle connection.
func (a *Agent) DialPostgres(ctx context.Context, name string, p PostgresParams) (*PostgresConn, error) {
	c, err := a.connection(name, "postgres")
	if err != nil {
		return nil, err
	}
	// The agent holds the credential, so it is the last word on where the
	// credential may be used: only the databases its config lists.
	if !c.Serves(p.Database) {
		err := fmt.Errorf("%w: connection %s does not serve database %q", ErrUnknownConnection, name, p.Database)
		return nil, &DialError{Connection: name, Reason: ReasonDatabase, Code: codeInvalidCatalog, Message: "gatehouse: " + err.Error(), Err: err}
	}
	cfg, err := a.pgConfig(ctx, c, p.Database)
	if err != nil {
		return nil, err
	}
	for k, v := range p.Runtime {
		cfg.RuntimeParams[k] = v
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		de := classifyDial(name, err)
		de.Err = fmt.Errorf("upstream %s: %w", name, scrub(err, cfg.Password))
		de.Message, de.Hint = scrubText(de.Message, cfg.Password), scrubText(de.Hint, cfg.Password)
		return nil, de
	}
	// pgconn may still have a background read in flight on the socket (it
	// starts one when a startup write is slow, to avoid a write/read
	// deadlock): hijacked without SyncConn, that goroutine can take the
	// upstream's first answer after the handover, and the session hangs
	// with the answer lost (pgconn's SyncConn doc; seen under a burst of
	// new sessions, TestBurstIsNeverRefused).
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(context.Background())
		return nil, fmt.Errorf("upstream %s: sync before hijack: %w", name, err)
	}
	// pgconn may still have a background read in flight on the socket (it
	// starts one when a startup write is slow, to avoid a write/read
	// deadlock): hijacked without SyncConn, that goroutine can take the
	// upstream's first answer after the handover, and the session hangs
	// with the answer lost (pgconn's SyncConn doc; seen under a burst of
	// new sessions, TestBurstIsNeverRefused).
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(context.Background())
		return nil, fmt.Errorf("upstream %s: sync before hijack: %w", name, err)
	}
	h, err := pc.Hijack()
	if err != nil {
		pc.Close(context.Background())
		return nil, fmt.Errorf("upstream %s: hijack: %w", name, err)
	}
	return &PostgresConn{Conn: h.Conn, PID: h.PID, SecretKey: h.SecretKey, ParameterStatus: h.ParameterStatuses, TxStatus: h.TxStatus}, nil
}

// scrub makes sure an upstream error cannot carry the password, whatever a
// driver version puts in its messages.
func scrub(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(scrubText(err.Error(), password))
}

func scrubText(s, password string) string {
	if password == "" {
		return s
	}
	return strings.ReplaceAll(s, password, "xxxxx")
}

// CancelPostgres sends a CancelRequest to the upstream on a new connection
// (PostgreSQL docs, "Canceling Requests in Progress").
func (a *Agent) CancelPostgres(ctx context.Context, name string, pid uint32, secret []byte) error {
	c, err := a.connection(name, "postgres")
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.Address)
	if err != nil {
		return fmt.Errorf("cancel on %s: %w", name, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	buf, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if err != nil {
		return fmt.Errorf("cancel on %s: %w", name, err)
	}
	if _, err := conn.Write(buf); err != nil {
		return fmt.Errorf("cancel on %s: %w", name, err)
	}
	// The server closes the connection without answering.
	var one [1]byte
	conn.Read(one[:])
	return nil
}
