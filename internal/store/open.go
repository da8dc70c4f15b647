package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Open opens the store named by spec: "sqlite" (a file gatehouse.db in
// dataDir), "sqlite:PATH", or a postgres:// / postgresql:// URL.
func Open(ctx context.Context, spec, dataDir string) (Store, error) {
	switch {
	case spec == "" || spec == "sqlite":
		return OpenSQLite(ctx, filepath.Join(dataDir, "gatehouse.db"))
	case strings.HasPrefix(spec, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(spec, "sqlite:"))
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return OpenPostgres(ctx, spec)
	default:
		return nil, fmt.Errorf("store: unknown store %q (want sqlite, sqlite:PATH or postgres://…)", Redact(spec))
	}
}

// Redact hides a password in a store URL so it can be logged.
func Redact(spec string) string {
	u, err := url.Parse(spec)
	if err != nil || u.User == nil {
		return spec
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// OpenSQLite opens (creating if needed) an SQLite store at path. WAL mode
// with synchronous=FULL makes every committed transaction durable (fsync of
// the WAL), which is what lets the audit log acknowledge an event only once
// it would survive kill -9 or power loss.
func OpenSQLite(ctx context.Context, path string) (Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)"
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	// One writer connection: SQLite allows one writer at a time anyway, and
	// queuing in Go is cheaper than spinning on SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	r.SetMaxOpenConns(4)
	s := &sqlStore{d: sqliteDialect, w: w, r: r, closers: []func() error{r.Close, w.Close}}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	return s, nil
}

// OpenPostgres opens a PostgreSQL store; several gateway nodes may share it.
func OpenPostgres(ctx context.Context, url string) (Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres store %s: %w", Redact(url), err)
	}
	db.SetMaxOpenConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres store %s: %w", Redact(url), err)
	}
	s := &sqlStore{d: postgresDialect, w: db, r: db, closers: []func() error{db.Close}}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
