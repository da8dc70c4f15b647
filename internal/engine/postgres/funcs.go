package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
	"github.com/jackc/pgx/v5/pgproto3"
)

// A read that can write is not a read: every function a statement calls,
// and every operator it uses, is classified against the upstream
// database's own catalog (sqlguard.Catalog), and calling anything not known
// to be read-only is the action sql:call on Function::"<conn>/<schema>.<name>".
// The catalog is loaded through the agent on a connection of its own, shared
// by every session on the same connection and database, and reloaded when
// older than catalogTTL or after a statement that changes the schema
// completes.

// catalogTTL bounds how stale a function catalog may be: a function
// created by someone outside the gateway is seen within it.
const catalogTTL = 5 * time.Second

// maxCatalogRows bounds the catalog read from the upstream; a database with
// more functions than this is classified without one (every call is
// sql:call), which fails closed.
const maxCatalogRows = 200000

type catalogKey struct{ connection, database string }

type catalogs struct {
	mu sync.Mutex
	m  map[catalogKey]*catalogEntry
}

type catalogEntry struct {
	mu     sync.Mutex // held while loading
	cat    *sqlguard.Catalog
	loaded time.Time
	stale  bool
	failed time.Time // last failed load, so a down upstream is not hammered
}

// emptyCatalog knows no function: every call is not known to be read-only.
var emptyCatalog = sqlguard.NewCatalog(nil, nil, nil, nil)

// catalogFor returns the function catalog of the session's database,
// loading it when missing or stale. It never fails: without a catalog
// every call is classified as not read-only.
func (s *session) catalogFor(ctx context.Context) *sqlguard.Catalog {
	e := s.e
	key := catalogKey{s.gs.Connection, s.database}
	e.cats.mu.Lock()
	if e.cats.m == nil {
		e.cats.m = map[catalogKey]*catalogEntry{}
	}
	ent := e.cats.m[key]
	if ent == nil {
		ent = &catalogEntry{}
		e.cats.m[key] = ent
	}
	e.cats.mu.Unlock()

	ent.mu.Lock()
	defer ent.mu.Unlock()
	now := time.Now()
	if ent.cat != nil && !ent.stale && now.Sub(ent.loaded) < catalogTTL {
		return ent.cat
	}
	if now.Sub(ent.failed) < time.Second {
		return emptyCatalog
	}
	cat, err := s.loadCatalog(ctx)
	if err != nil {
		ent.failed, ent.cat = now, nil
		s.e.opts.Logger.Warn("postgres function catalog unavailable; every function call is classified sql:call",
			"connection", key.connection, "database", key.database, "err", err)
		return emptyCatalog
	}
	ent.cat, ent.loaded, ent.stale = cat, now, false
	return cat
}

// invalidateCatalog marks the session's database catalog stale: a
// statement that may have created or changed functions completed.
func (s *session) invalidateCatalog() {
	e := s.e
	e.cats.mu.Lock()
	ent := e.cats.m[catalogKey{s.gs.Connection, s.database}]
	e.cats.mu.Unlock()
	if ent != nil {
		ent.mu.Lock()
		ent.stale = true
		ent.mu.Unlock()
	}
}

// catalogQuery reads pg_catalog's functions, the functions of every other
// schema, and the functions behind operators outside pg_catalog, in one
// round trip. Its text carries no client input.
const catalogQuery = `SELECT 'b', n.nspname::text, p.proname::text, p.provolatile::text, p.prokind::text, p.prosecdef::text, ''
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
UNION ALL
SELECT 'o', pn.nspname::text, p.proname::text, p.provolatile::text, p.prokind::text, p.prosecdef::text, o.oprname::text
  FROM pg_catalog.pg_operator o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
  JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
  JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
 WHERE n.nspname <> 'pg_catalog'`

func (s *session) loadCatalog(ctx context.Context) (*sqlguard.Catalog, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	up, err := s.e.opts.Dialer.DialPostgres(ctx, s.gs.Connection, agentParams(s.database))
	if err != nil {
		return nil, fmt.Errorf("catalog connection: %w", err)
	}
	defer up.Conn.Close()
	if d, ok := ctx.Deadline(); ok {
		up.Conn.SetDeadline(d)
	}
	var builtin, user []sqlguard.Func
	ops := map[string][]sqlguard.Func{}
	rows := 0
	err = simpleQuery(up.Conn, catalogQuery, 7, func(v []string) error {
		if rows++; rows > maxCatalogRows {
			return fmt.Errorf("more than %d functions", maxCatalogRows)
		}
		if len(v[3]) != 1 || len(v[4]) != 1 {
			return errors.New("catalog row: bad volatility or kind")
		}
		f := sqlguard.Func{Schema: v[1], Name: v[2], Volatile: v[3][0], Kind: v[4][0], SecurityDefiner: v[5] == "true"}
		switch {
		case v[0] == "o":
			ops[v[6]] = append(ops[v[6]], f)
		case f.Schema == "pg_catalog":
			builtin = append(builtin, f)
		default:
			user = append(user, f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sqlguard.NewCatalog(builtin, user, ops, s.target.ReadOnlyFunctions), nil
}

// callAccesses are the sql:call accesses of a's calls that are not known
// to be read-only, and the catalog they were classified with (nil when a
// calls nothing).
func (s *session) callAccesses(ctx context.Context, a *sqlguard.Analysis) ([]gateway.Access, *sqlguard.Catalog) {
	if len(a.Calls) == 0 && len(a.Operators) == 0 {
		return nil, nil
	}
	cat := s.catalogFor(ctx)
	var out []gateway.Access
	for _, f := range cat.NotReadOnly(a) {
		out = append(out, gateway.Access{Action: sqlguard.ClassCall.Action(), ResourceType: policy.Function, ResourceID: s.gs.Connection + "/" + f.String()})
	}
	return out, cat
}

// simpleQuery runs q on an idle upstream connection of the engine's own and
// calls row for each DataRow of ncol non-null text values.
func simpleQuery(c interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
}, q string, ncol int, row func([]string) error) error {
	if _, err := c.Write(appendFrame(nil, 'Q', append([]byte(q), 0))); err != nil {
		return fmt.Errorf("catalog query: %w", err)
	}
	r := newFrameReader(c, 16<<20)
	var failed error
	for {
		typ, body, err := r.next()
		if err != nil {
			return fmt.Errorf("catalog query: %w", err)
		}
		switch typ {
		case 'D':
			if failed != nil {
				continue
			}
			vals, err := textRow(body, ncol)
			if err != nil {
				return fmt.Errorf("catalog row: %w", err)
			}
			failed = row(vals)
		case 'E':
			var e pgproto3.ErrorResponse
			e.Decode(body)
			failed = fmt.Errorf("catalog query: %s", strings.TrimSpace(e.Message))
		case 'Z':
			return failed
		}
	}
}
