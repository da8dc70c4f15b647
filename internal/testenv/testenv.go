package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	_ "github.com/jackc/pgx/v5/stdlib" // driver for the admin connection
)

// EnvPostgres names the admin URL of the PostgreSQL server tests may use.
const EnvPostgres = "GATEHOUSE_TEST_POSTGRES"

// EnvIntegration, when "1", turns a missing integration dependency from a
// skip into a failure; scripts/test.sh sets it.
const EnvIntegration = "GATEHOUSE_INTEGRATION"

// Require skips (or, under GATEHOUSE_INTEGRATION=1, fails) the test when a
// dependency is missing.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv(EnvIntegration) == "1" {
		t.Fatalf("integration dependency missing: %s", what)
	}
	t.Skipf("skipping: %s (run scripts/test.sh to set it up)", what)
}

// PostgresAdminURL returns the admin URL of the test server.
func PostgresAdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvPostgres)
	Require(t, u != "", EnvPostgres+" is not set")
	return u
}

// PostgresDB creates a fresh database on the test server, dropped when the
// test ends, and returns its URL.
func PostgresDB(t testing.TB) string {
	t.Helper()
	admin := PostgresAdminURL(t)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer db.Close()
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	name := "gh_test_" + hex.EncodeToString(rb[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testenv: bad %s: %v", EnvPostgres, err)
	}
	u.Path = "/" + name
	return u.String()
}

// StoreKind names one store implementation under test.
type StoreKind struct {
	Name string
	// Spec opens a new, empty store of this kind and returns its spec (as
	// in the config's store key) and the data dir to pass to store.Open.
	Spec func(t testing.TB) (spec, dataDir string)
}

// Stores lists both store implementations, so a suite runs against each.
func Stores() []StoreKind {
	return []StoreKind{
		{Name: "sqlite", Spec: func(t testing.TB) (string, string) {
			dir := t.TempDir()
			return "sqlite", dir
		}},
		{Name: "postgres", Spec: func(t testing.TB) (string, string) {
			return PostgresDB(t), t.TempDir()
		}},
	}
}

// OpenStore opens a store of kind k, closed when the test ends.
func OpenStore(t testing.TB, spec, dataDir string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), spec, dataDir)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// RawDB opens the store's underlying database directly, so tamper tests can
// change rows the way an attacker with file or table access would.
func RawDB(t testing.TB, spec, dataDir string) (db *sql.DB, rebind func(string) string) {
	t.Helper()
	var err error
	if strings.HasPrefix(spec, "postgres") {
		db, err = sql.Open("pgx", spec)
		rebind = store.NumberPlaceholders
	} else {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(dataDir, "gatehouse.db")+"?_pragma=busy_timeout(10000)")
		rebind = func(q string) string { return q }
	}
	if err != nil {
		t.Fatalf("raw db: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, rebind
}
