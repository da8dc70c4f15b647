package testenv

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
)

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// RandHex returns 2n random hex digits.
func RandHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Upstream is a fresh database on the private PostgreSQL, owned by a fresh
// role that logs in with a SCRAM password: what Gatehouse's agent connects
// to in integration tests.
type Upstream struct {
	Addr     string // host:port
	DB       string
	Role     string
	Password string
	// URL connects as Role (the owner), for test setup behind the gateway's back.
	URL string
	// AdminURL connects to DB as the test server's administrator.
	AdminURL string
}

// NewUpstream creates the database and role, dropped when the test ends.
// password "" means a random one.
func NewUpstream(t testing.TB, rolePrefix, password string) *Upstream {
	t.Helper()
	dbURL := PostgresDB(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if password == "" {
		password = "UPSTREAM-SECRET-" + RandHex(8)
	}
	up := &Upstream{Addr: u.Host, DB: strings.TrimPrefix(u.Path, "/"), Role: rolePrefix + RandHex(4), Password: password, AdminURL: dbURL}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"SET password_encryption = 'scram-sha-256'",
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", up.Role, password),
		fmt.Sprintf("GRANT ALL ON DATABASE %s TO %s", up.DB, up.Role),
		fmt.Sprintf("GRANT ALL ON SCHEMA public TO %s", up.Role),
		fmt.Sprintf("ALTER DATABASE %s OWNER TO %s", up.DB, up.Role),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", PostgresAdminURL(t))
		if err == nil {
			db.Exec("DROP ROLE IF EXISTS " + up.Role) // runs after the database is dropped
			db.Close()
		}
	})
	u.User = url.UserPassword(up.Role, password)
	up.URL = u.String()
	return up
}
