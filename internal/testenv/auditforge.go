package testenv

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"regexp"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

// linkPrefix is how every audit event body starts: its id, index and link.
var linkPrefix = regexp.MustCompile(`^\{"id":"([^"]*)","index":\d+,"prev":"[0-9a-f]*"`)

// ForgeAudit rewrites a stored audit log the way an attacker with write
// access to the store (the SQLite file, the PostgreSQL table) can, without
// the signing key: edit is given each event's index and exact body and
// returns the body to keep, or nil to drop the event. The kept events are
// renumbered, relinked and rehashed, written back in place of the old rows,
// and the log head is fixed to match, so the events alone look intact.
// Checkpoints are left as they are.
func ForgeAudit(t testing.TB, db *sql.DB, rebind func(string) string, edit func(index int64, body []byte) []byte) {
	t.Helper()
	type row struct {
		id   string
		ts   int64
		body []byte
	}
	rows, err := db.Query(`SELECT id, ts, body FROM audit_events ORDER BY idx`)
	if err != nil {
		t.Fatalf("forge audit: %v", err)
	}
	var kept []row
	for i := int64(0); rows.Next(); i++ {
		var r row
		if err := rows.Scan(&r.id, &r.ts, &r.body); err != nil {
			t.Fatalf("forge audit: %v", err)
		}
		if r.body = edit(i, r.body); r.body != nil {
			kept = append(kept, r)
		}
	}
	rows.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatalf("forge audit: %v", err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM audit_events`); err != nil {
		t.Fatalf("forge audit: %v", err)
	}
	var prev []byte
	for i, r := range kept {
		m := linkPrefix.FindSubmatch(r.body)
		if m == nil {
			t.Fatalf("forge audit: event %d does not start with its id, index and link", i)
		}
		body := append([]byte(fmt.Sprintf(`{"id":"%s","index":%d,"prev":"%s"`, m[1], i, hex.EncodeToString(prev))), r.body[len(m[0]):]...)
		leaf := rfc6962.DefaultHasher.HashLeaf(body)
		if _, err := tx.Exec(rebind(`INSERT INTO audit_events (idx, id, ts, body, leaf_hash) VALUES (?, ?, ?, ?, ?)`), i, r.id, r.ts, body, leaf); err != nil {
			t.Fatalf("forge audit: %v", err)
		}
		prev = leaf
	}
	if _, err := tx.Exec(rebind(`UPDATE audit_head SET size = ?, last_leaf = ? WHERE id = 1`), len(kept), prev); err != nil {
		t.Fatalf("forge audit: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("forge audit: %v", err)
	}
}
