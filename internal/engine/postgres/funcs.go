package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	cur   atomic.Pointer[loadedCatalog] // read without a lock on every statement
	stale atomic.Bool
	mu    sync.Mutex // held while loading
	// failed is the last failed load, so a down upstream is not hammered.
	failed time.Time
	// bodies are the function bodies parsed at the last load.
	bodies *sqlguard.BodyCache
}

type loadedCatalog struct {
	cat *sqlguard.Catalog
	at  time.Time
}

// fresh returns the entry's catalog if it may still be used.
func (ent *catalogEntry) fresh(now time.Time) *sqlguard.Catalog {
	if l := ent.cur.Load(); l != nil && !ent.stale.Load() && now.Sub(l.at) < catalogTTL {
		return l.cat
	}
	return nil
}

// emptyCatalog knows no function: every call is not known to be read-only.
var emptyCatalog = sqlguard.NewCatalog(sqlguard.CatalogData{})

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

	if cat := ent.fresh(time.Now()); cat != nil {
		return cat
	}
	ent.mu.Lock()
	defer ent.mu.Unlock()
	now := time.Now()
	if cat := ent.fresh(now); cat != nil {
		return cat // another session loaded it meanwhile
	}
	if now.Sub(ent.failed) < time.Second {
		return emptyCatalog
	}
	ent.stale.Store(false) // before the load: a change during it marks it stale again
	if ent.bodies == nil {
		ent.bodies = sqlguard.NewBodyCache()
	}
	cat, err := s.loadCatalog(ctx, ent.bodies)
	if err != nil {
		ent.failed = now
		ent.cur.Store(nil)
		s.e.opts.Logger.Warn("postgres function catalog unavailable; every function call is classified sql:call",
			"connection", key.connection, "database", key.database, "err", err)
		return emptyCatalog
	}
	ent.cur.Store(&loadedCatalog{cat: cat, at: now})
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
		ent.stale.Store(true)
	}
}

// catalogQuery reads, in one round trip: every function (an aggregate's
// volatility and rights are the worst of its support functions'), the
// functions behind operators and casts outside pg_catalog, the functions
// each view calls and the views each view reads. Its text carries no
// client input.
const catalogQuery = `WITH fn AS (
  SELECT p.oid, n.nspname::text AS nsp, p.proname::text AS name, p.prokind::text AS kind, l.lanname::text AS lang,
         CASE WHEN l.lanname IN ('sql', 'plpgsql') AND p.prokind = 'f' AND n.nspname <> 'pg_catalog'
              THEN pg_catalog.pg_get_functiondef(p.oid) ELSE '' END AS src,
         p.pronargs::text AS nargs, p.pronargdefaults::text AS ndef,
         CASE WHEN p.prokind <> 'a' THEN p.provolatile::text
              ELSE COALESCE((SELECT CASE WHEN bool_or(f.provolatile = 'v') THEN 'v' WHEN bool_or(f.provolatile = 's') THEN 's' ELSE 'i' END
                   FROM pg_catalog.pg_aggregate a JOIN pg_catalog.pg_proc f
                     ON f.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn,
                                  a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn)
                  WHERE a.aggfnoid = p.oid), 'v') END AS vol,
         (p.prosecdef OR p.prokind = 'a' AND EXISTS (SELECT 1 FROM pg_catalog.pg_aggregate a JOIN pg_catalog.pg_proc f
                     ON f.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn,
                                  a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn)
                  WHERE a.aggfnoid = p.oid AND f.prosecdef))::text AS secdef
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_catalog.pg_language l ON l.oid = p.prolang),
rules AS (
  SELECT d.refobjid, d.refclassid, vn.nspname::text AS vnsp, v.relname::text AS vname
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
    JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
   WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND v.relkind = 'v'
     AND vn.nspname NOT IN ('pg_catalog', 'information_schema'))
SELECT 'f', nsp, name, vol, kind, secdef, nargs, ndef, oid::text, lang, src FROM fn
UNION ALL
SELECT 'o', fn.nsp, fn.name, fn.vol, fn.kind, fn.secdef, o.oprname::text, n.nspname::text, fn.oid::text, '', ''
  FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace JOIN fn ON fn.oid = o.oprcode
 WHERE n.nspname <> 'pg_catalog'
UNION ALL
SELECT 'c', fn.nsp, fn.name, fn.vol, fn.kind, fn.secdef, t.typname::text, '', fn.oid::text, '', ''
  FROM pg_catalog.pg_cast c JOIN fn ON fn.oid = c.castfunc JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
 WHERE fn.nsp <> 'pg_catalog'
UNION ALL
SELECT 'c', fn.nsp, fn.name, fn.vol, fn.kind, fn.secdef, t.typname::text, '', fn.oid::text, '', ''
  FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_type t ON t.oid = c.contypid
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = c.oid
   AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
  JOIN fn ON fn.oid = d.refobjid
 WHERE c.contypid <> 0 AND c.contype = 'c'
UNION ALL
SELECT 'i', fn.nsp, fn.name, fn.vol, fn.kind, fn.secdef, '', '', fn.oid::text, '', ''
  FROM pg_catalog.pg_amproc ap JOIN pg_catalog.pg_opfamily f ON f.oid = ap.amprocfamily
  JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace JOIN fn ON fn.oid = ap.amproc
 WHERE n.nspname <> 'pg_catalog'
UNION ALL
SELECT 'v', fn.nsp, fn.name, fn.vol, fn.kind, fn.secdef, rules.vnsp, rules.vname, fn.oid::text, '', ''
  FROM rules JOIN fn ON fn.oid = rules.refobjid WHERE rules.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
UNION ALL
SELECT 'a', '', '', '', '', '', a.aggfnoid::pg_catalog.oid::text, s.f::text, '', '', ''
  FROM pg_catalog.pg_aggregate a
  JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  CROSS JOIN LATERAL unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn,
                                  a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn]::pg_catalog.oid[]) s(f)
 WHERE s.f <> 0 AND n.nspname <> 'pg_catalog'
UNION ALL
SELECT 'w', rules.vnsp, rules.vname, '', '', '', rn.nspname::text, rv.relname::text, '', '', ''
  FROM rules JOIN pg_catalog.pg_class rv ON rv.oid = rules.refobjid
  JOIN pg_catalog.pg_namespace rn ON rn.oid = rv.relnamespace
 WHERE rules.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND rv.relkind = 'v'`

func (s *session) loadCatalog(ctx context.Context, bodies *sqlguard.BodyCache) (*sqlguard.Catalog, error) {
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
	d := sqlguard.CatalogData{Operators: map[string][]sqlguard.Func{}, Casts: map[string][]sqlguard.Func{},
		Views: map[string][]sqlguard.Func{}, ViewViews: map[string][]string{}, DeclaredReadOnly: s.target.ReadOnlyFunctions,
		AggSupport: map[uint32][]uint32{},
		Bodies:     bodies}
	rows := 0
	err = simpleQuery(up.Conn, catalogQuery, 11, func(v []string) error {
		if rows++; rows > maxCatalogRows {
			return fmt.Errorf("more than %d catalog rows", maxCatalogRows)
		}
		if v[0] == "a" {
			agg, err1 := strconv.ParseUint(v[6], 10, 32)
			sup, err2 := strconv.ParseUint(v[7], 10, 32)
			if err1 != nil || err2 != nil {
				return errors.New("catalog row: bad aggregate support")
			}
			d.AggSupport[uint32(agg)] = append(d.AggSupport[uint32(agg)], uint32(sup))
			return nil
		}
		if v[0] == "w" {
			view := sqlguard.QualifiedName(v[1], v[2])
			d.ViewViews[view] = append(d.ViewViews[view], sqlguard.QualifiedName(v[6], v[7]))
			return nil
		}
		if len(v[3]) != 1 || len(v[4]) != 1 {
			return errors.New("catalog row: bad volatility or kind")
		}
		f := sqlguard.Func{Schema: v[1], Name: v[2], Volatile: v[3][0], Kind: v[4][0], SecurityDefiner: v[5] == "true"}
		if oid, err := strconv.ParseUint(v[8], 10, 32); err == nil {
			f.OID = uint32(oid)
		}
		f.Lang, f.Source = v[9], v[10]
		switch v[0] {
		case "f":
			f.Args, _ = strconv.Atoi(v[6])
			f.Defaults, _ = strconv.Atoi(v[7])
			if f.Schema == "pg_catalog" {
				d.Builtin = append(d.Builtin, f)
			} else {
				d.User = append(d.User, f)
			}
		case "o":
			f.OpSchema = v[7]
			d.Operators[v[6]] = append(d.Operators[v[6]], f)
			d.Implicit = append(d.Implicit, f)
		case "i":
			d.Implicit = append(d.Implicit, f)
		case "c":
			d.Casts[v[6]] = append(d.Casts[v[6]], f)
			d.Implicit = append(d.Implicit, f)
		case "v":
			view := sqlguard.QualifiedName(v[6], v[7])
			d.Views[view] = append(d.Views[view], f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sqlguard.NewCatalog(d), nil
}

// callAccesses are the sql:call accesses of what a may call that is not
// known to be read-only, the flags those calls add (a risky function the
// text never names, such as set_config behind UPDATE pg_settings), and the
// catalog they were classified with.
func (s *session) callAccesses(ctx context.Context, a *sqlguard.Analysis) ([]gateway.Access, []string, *sqlguard.Catalog) {
	cat := s.catalogFor(ctx)
	var out []gateway.Access
	var flags []string
	for _, f := range cat.NotReadOnly(a) {
		out = append(out, gateway.Access{Action: sqlguard.ClassCall.Action(), ResourceType: policy.Function, ResourceID: s.gs.Connection + "/" + f.String()})
		for _, fl := range sqlguard.CallFlags(f.Name) {
			if !a.HasFlag(fl) && !slices.Contains(flags, fl) {
				flags = append(flags, fl)
			}
		}
	}
	return out, flags, cat
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
