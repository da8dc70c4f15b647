package postgres

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/jackc/pgx/v5/pgproto3"
)

type colKey struct {
	table uint32
	attr  uint16
}

type colName struct{ schema, table, column string }

// catalog answers column-name lookups on a second upstream connection of
// the session's own (the client's connection is busy streaming the result
// the lookup is for). Answers are cached for the session.
type catalog struct {
	up    *agent.PostgresConn
	r     *frameReader
	w     *bufio.Writer
	names map[colKey]colName
	known map[uint32]bool // tables looked up
}

func (c *catalog) close() { c.up.Conn.Close() }

// columnNames resolves the schema, table and column of every field that
// comes from a table.
func (s *session) columnNames(ctx context.Context, fields []pgproto3.FieldDescription) (map[colKey]colName, error) {
	var missing []uint32
	for _, f := range fields {
		if f.TableOID != 0 && (s.catalog == nil || !s.catalog.known[f.TableOID]) {
			missing = append(missing, f.TableOID)
		}
	}
	if len(missing) == 0 {
		if s.catalog == nil {
			return nil, nil
		}
		return s.catalog.names, nil
	}
	if s.catalog == nil {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		up, err := s.e.opts.Dialer.DialPostgres(dctx, s.gs.Connection, agentParams(s.database))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("catalog connection: %w", err)
		}
		s.catalog = &catalog{up: up, r: newFrameReader(up.Conn, 16<<20), w: bufio.NewWriter(up.Conn), names: map[colKey]colName{}, known: map[uint32]bool{}}
	}
	if err := s.catalog.lookup(missing); err != nil {
		return nil, err
	}
	return s.catalog.names, nil
}

// agentParams are the startup parameters of the engine's own catalog
// connections: short lock and statement timeouts, so that a lock on a
// system catalog (LOCK pg_proc in someone's open transaction) makes a
// catalog read fail fast instead of stalling every session behind it.
func agentParams(db string) agent.PostgresParams {
	return agent.PostgresParams{Database: db, Runtime: map[string]string{"client_encoding": "UTF8", "application_name": "gatehouse-catalog",
		"search_path": "pg_catalog", "lock_timeout": "2s", "statement_timeout": "10s"}}
}

// lookup runs one catalog query for the given table OIDs. The OIDs are
// numbers the server sent, formatted by us, so the query text carries no
// client input.
func (c *catalog) lookup(oids []uint32) error {
	var list strings.Builder
	for i, o := range oids {
		if i > 0 {
			list.WriteByte(',')
		}
		list.WriteString(strconv.FormatUint(uint64(o), 10))
		c.known[o] = true
	}
	q := `SELECT a.attrelid::int8, a.attnum::int4, n.nspname::text, cl.relname::text, a.attname::text
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
WHERE a.attnum > 0 AND a.attrelid IN (` + list.String() + `)`
	c.up.Conn.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.up.Conn.SetDeadline(time.Time{})
	if err := writeFrame(c.w, 'Q', append([]byte(q), 0)); err != nil {
		return fmt.Errorf("catalog query: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("catalog query: %w", err)
	}
	var failed error
	for {
		typ, body, err := c.r.next()
		if err != nil {
			return fmt.Errorf("catalog query: %w", err)
		}
		switch typ {
		case 'D':
			vals, err := textRow(body, 5)
			if err != nil {
				return fmt.Errorf("catalog row: %w", err)
			}
			rel, err1 := strconv.ParseUint(vals[0], 10, 32)
			att, err2 := strconv.ParseUint(vals[1], 10, 16)
			if err1 != nil || err2 != nil {
				return errors.New("catalog row: bad numbers")
			}
			c.names[colKey{uint32(rel), uint16(att)}] = colName{vals[2], vals[3], vals[4]}
		case 'E':
			var e pgproto3.ErrorResponse
			e.Decode(body)
			failed = fmt.Errorf("catalog query: %s", e.Message)
		case 'Z':
			return failed
		}
	}
}

// textRow splits a DataRow of n non-null text values.
func textRow(body []byte, n int) ([]string, error) {
	if len(body) < 2 || int(binary.BigEndian.Uint16(body)) != n {
		return nil, errors.New("unexpected column count")
	}
	body = body[2:]
	out := make([]string, n)
	for i := range out {
		if len(body) < 4 {
			return nil, errors.New("short row")
		}
		l := int32(binary.BigEndian.Uint32(body))
		body = body[4:]
		if l < 0 || int(l) > len(body) {
			return nil, errors.New("bad length")
		}
		out[i] = string(body[:l])
		body = body[l:]
	}
	return out, nil
}
