package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// pipeAddr names the MCP client behind an in-process SQL session, so the
// PostgreSQL engine's audit events and recordings show where it came from.
type pipeAddr string

func (a pipeAddr) Network() string { return "mcp" }
func (a pipeAddr) String() string  { return string(a) }

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// approvalNotice is how the PostgreSQL engine tells a client that a
// statement is held: a NoticeResponse "gatehouse: approval required: ID ...".
const approvalNotice = "gatehouse: approval required: "

// approvalID reads the approval id from a notice message.
func approvalID(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, approvalNotice)
	if !ok {
		return "", false
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", false
	}
	id := strings.TrimRight(f[0], ".,;:)")
	return id, id != ""
}

// sqlSession is one in-process wire session of the PostgreSQL engine.
type sqlSession struct {
	conn *pgconn.PgConn
}

// connectSQL opens a wire session on connection as the call's principal:
// its token is the password, exactly as for psql, and the session runs
// every step a network client's does. application_name names the call, so
// the session's audit events and recording link back to it. onApproval is
// called with the id of each statement the engine holds for approval. ctx
// bounds the whole session, not only the connect.
func (c *call) connectSQL(ctx context.Context, connection string, onApproval func(id string)) (*sqlSession, error) {
	serve := c.e.opts.ServePostgres
	if serve == nil {
		return nil, toolErrorf("gatehouse: SQL is not available on this gateway (the PostgreSQL engine is not wired)")
	}
	cfg, err := pgconn.ParseConfig("host=gatehouse port=5432 sslmode=disable")
	if err != nil {
		return nil, fmt.Errorf("sql config: %w", err)
	}
	// Nothing from the environment (PGOPTIONS, PGPASSWORD, ...) applies:
	// this session is the call's and nothing else's.
	cfg.User = connection
	cfg.Password = c.token
	cfg.Database = ""
	cfg.TLSConfig = nil
	cfg.Fallbacks = nil
	cfg.RuntimeParams = map[string]string{"application_name": "gatehouse-mcp/" + c.id}
	cfg.ConnectTimeout = 30 * time.Second
	source := pipeAddr(c.gs.Source)
	cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return []string{host}, nil }
	// The engine's session runs under ctx, the lifetime of the SQL work
	// (not the dial's, which ends with the connect timeout). A statement
	// held for approval blocks the session without reading the pipe, so
	// closing the pipe alone would not end it: cancelling ctx does.
	sessionCtx := ctx
	cfg.DialFunc = func(_ context.Context, network, addr string) (net.Conn, error) {
		client, server := net.Pipe()
		go serve(sessionCtx, addrConn{Conn: server, remote: source})
		return client, nil
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if id, ok := approvalID(n.Message); ok && onApproval != nil {
			onApproval(id)
		}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, sqlError(err)
	}
	return &sqlSession{conn: conn}, nil
}

func (s *sqlSession) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.conn.Close(ctx)
}

// sqlError turns a wire error into what the agent reads: the server's
// message (a policy denial is "gatehouse: denied by policy ..."), with its
// SQLSTATE and any detail or hint.
func sqlError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.Detail != "" {
			msg += "\nDETAIL: " + pe.Detail
		}
		if pe.Hint != "" {
			msg += "\nHINT: " + pe.Hint
		}
		if pe.Code != "" {
			msg += fmt.Sprintf("\n(SQLSTATE %s)", pe.Code)
		}
		return &toolError{msg: msg}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return toolErrorf("gatehouse: the statement was cancelled")
	}
	return toolErrorf("gatehouse: %v", err)
}

// Column is a result column.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type" jsonschema:"the PostgreSQL type name, e.g. int4, text, numeric"`
}

// result is what a statement returned.
type result struct {
	Columns    []Column
	Rows       [][]any
	Truncated  bool
	CommandTag string
}

// query runs sql (the simple query protocol, as psql -c does) and reads
// at most maxRows rows of the last result that has columns. When the limit
// is reached it cancels the statement upstream (a CancelRequest through the
// same engine) rather than reading the rest.
func (s *sqlSession) query(ctx context.Context, sql string, maxRows int) (*result, error) {
	res := &result{}
	var tags []string
	mrr := s.conn.Exec(ctx, sql)
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		fields := rr.FieldDescriptions()
		if len(fields) > 0 {
			res.Columns = make([]Column, len(fields))
			for i, f := range fields {
				res.Columns[i] = Column{Name: f.Name, Type: typeName(f.DataTypeOID)}
			}
			res.Rows = res.Rows[:0]
			res.Truncated = false
		}
		for rr.NextRow() {
			if len(res.Rows) >= maxRows {
				res.Truncated = true
				s.cancel(ctx)
				break
			}
			vals := rr.Values()
			row := make([]any, len(vals))
			for i, v := range vals {
				row[i] = jsonValue(fields[i].DataTypeOID, v)
			}
			res.Rows = append(res.Rows, row)
		}
		tag, err := rr.Close()
		if err != nil {
			if res.Truncated && isCanceled(err) {
				// Our own cancel after the row limit: the rows read stand.
				mrr.Close()
				tags = append(tags, "SELECT (truncated)")
				res.CommandTag = strings.Join(tags, "; ")
				return res, nil
			}
			mrr.Close()
			return nil, sqlError(err)
		}
		tags = append(tags, tag.String())
	}
	if err := mrr.Close(); err != nil {
		if res.Truncated && isCanceled(err) {
			return res, nil
		}
		return nil, sqlError(err)
	}
	res.CommandTag = strings.Join(tags, "; ")
	return res, nil
}

// params runs one statement with text parameters (the extended protocol)
// and returns its rows as text, at most maxRows of them.
func (s *sqlSession) params(ctx context.Context, sql string, args []string, maxRows int) (rows [][]*string, truncated bool, err error) {
	vals := make([][]byte, len(args))
	for i, a := range args {
		vals[i] = []byte(a)
	}
	rr := s.conn.ExecParams(ctx, sql, vals, nil, nil, nil)
	for rr.NextRow() {
		if len(rows) >= maxRows {
			truncated = true
			s.cancel(ctx)
			break
		}
		row := make([]*string, len(rr.Values()))
		for i, v := range rr.Values() {
			if v != nil {
				str := string(v)
				row[i] = &str
			}
		}
		rows = append(rows, row)
	}
	if _, err := rr.Close(); err != nil && !(truncated && isCanceled(err)) {
		return nil, false, sqlError(err)
	}
	return rows, truncated, nil
}

// cancel asks the engine to cancel the running statement. Best effort:
// the session is closed after the call anyway.
func (s *sqlSession) cancel(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	s.conn.CancelRequest(cctx)
}

func isCanceled(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57014" // query_canceled
}

// Type OIDs whose text form maps onto a JSON value (pg_type.dat).
const (
	oidBool    = 16
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidOID     = 26
	oidJSON    = 114
	oidFloat4  = 700
	oidFloat8  = 701
	oidNumeric = 1700
	oidJSONB   = 3802
)

var typeNames = map[uint32]string{
	oidBool: "bool", 17: "bytea", 18: "char", 19: "name", oidInt8: "int8", oidInt2: "int2", oidInt4: "int4", 25: "text",
	oidOID: "oid", oidJSON: "json", 142: "xml", 650: "cidr", oidFloat4: "float4", oidFloat8: "float8", 829: "macaddr",
	869: "inet", 1042: "bpchar", 1043: "varchar", 1082: "date", 1083: "time", 1114: "timestamp", 1184: "timestamptz",
	1186: "interval", 1266: "timetz", oidNumeric: "numeric", 2950: "uuid", oidJSONB: "jsonb",
	1000: "bool[]", 1005: "int2[]", 1007: "int4[]", 1016: "int8[]", 1009: "text[]", 1015: "varchar[]",
}

func typeName(oid uint32) string {
	if n, ok := typeNames[oid]; ok {
		return n
	}
	return fmt.Sprintf("oid:%d", oid)
}

// jsonValue maps a text-format value to JSON: numbers and booleans as
// such, json and jsonb as JSON, NULL as null, everything else (and any
// value masking has rewritten out of its type's shape) as a string.
func jsonValue(oid uint32, v []byte) any {
	if v == nil {
		return nil
	}
	s := string(v)
	switch oid {
	case oidBool:
		switch s {
		case "t":
			return true
		case "f":
			return false
		}
	case oidInt2, oidInt4, oidInt8, oidOID, oidFloat4, oidFloat8, oidNumeric:
		if json.Valid(v) && s != "" && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
			return json.Number(s)
		}
	case oidJSON, oidJSONB:
		if json.Valid(v) {
			return json.RawMessage(v)
		}
	}
	return s
}
