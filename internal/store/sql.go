package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dialect holds the few places where SQLite and PostgreSQL SQL differ.
type dialect struct {
	name string
	// blob is the column type for byte strings.
	blob string
	// lockHead is appended to the SELECT of the audit head inside the append
	// transaction; SQLite takes its write lock at BEGIN IMMEDIATE instead.
	lockHead string
	// numbered placeholders ($1) rather than '?'.
	numbered bool
}

var (
	sqliteDialect   = dialect{name: "sqlite", blob: "BLOB", lockHead: ""}
	postgresDialect = dialect{name: "postgres", blob: "BYTEA", lockHead: " FOR UPDATE", numbered: true}
)

// q rewrites '?' placeholders for dialects that number them.
func (d dialect) q(query string) string {
	if !d.numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// NumberPlaceholders rewrites '?' placeholders as PostgreSQL's $1, $2, …,
// for tests that write SQL for both stores.
func NumberPlaceholders(query string) string { return postgresDialect.q(query) }

func (d dialect) schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY, size BIGINT NOT NULL, last_leaf ` + d.blob + `)`,
		`INSERT INTO audit_head (id, size, last_leaf) VALUES (1, 0, NULL) ON CONFLICT (id) DO NOTHING`,
		`CREATE TABLE IF NOT EXISTS audit_events (idx BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, ts BIGINT NOT NULL, body ` + d.blob + ` NOT NULL, leaf_hash ` + d.blob + ` NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS audit_checkpoints (size BIGINT PRIMARY KEY, root ` + d.blob + ` NOT NULL, ts BIGINT NOT NULL, note ` + d.blob + ` NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS revocations (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL, revoked_at BIGINT NOT NULL, reason TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, principal TEXT NOT NULL, akey TEXT NOT NULL, created BIGINT NOT NULL, expires BIGINT NOT NULL, version BIGINT NOT NULL, data TEXT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status, created)`,
		`CREATE TABLE IF NOT EXISTS rec_sessions (id TEXT PRIMARY KEY, protocol TEXT NOT NULL, connection TEXT NOT NULL, principal TEXT NOT NULL, on_behalf_of TEXT NOT NULL, db TEXT NOT NULL, source TEXT NOT NULL, application TEXT NOT NULL, started BIGINT NOT NULL, ended BIGINT NOT NULL DEFAULT 0, end_reason TEXT NOT NULL DEFAULT '')`,
		// Statements are stored in chunks, one row per session per write:
		// a busy gateway records tens of thousands of statements a second.
		`CREATE TABLE IF NOT EXISTS rec_chunks (session TEXT NOT NULL, first_seq BIGINT NOT NULL, n BIGINT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (session, first_seq))`,
		`CREATE TABLE IF NOT EXISTS agents (name TEXT PRIMARY KEY, epoch BIGINT NOT NULL, enrolled_at BIGINT NOT NULL, revoked_at BIGINT NOT NULL DEFAULT 0, version TEXT NOT NULL DEFAULT '', connections TEXT NOT NULL DEFAULT '[]', last_seen BIGINT NOT NULL DEFAULT 0, cert_expires BIGINT NOT NULL DEFAULT 0)`,
		`CREATE TABLE IF NOT EXISTS agent_enroll_tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash ` + d.blob + ` NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT NOT NULL DEFAULT 0)`,
	}
}

// sqlStore implements Store over database/sql for both dialects.
type sqlStore struct {
	d dialect
	// w serialises writers; for SQLite it is a single connection opened with
	// immediate transactions, for PostgreSQL it is the same pool as r.
	w, r *sql.DB
	// beginWrite opens the append transaction.
	closers []func() error
}

func (s *sqlStore) migrate(ctx context.Context) error {
	for _, stmt := range s.d.schema() {
		if _, err := s.w.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("store migrate (%s): %w", s.d.name, err)
		}
	}
	return nil
}

// maxRowsPerInsert bounds one multi-row INSERT: five parameters a row stays
// well under SQLite's and PostgreSQL's parameter limits.
const maxRowsPerInsert = 500

func (s *sqlStore) AppendAudit(ctx context.Context, fn AppendFunc) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit append: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var size int64
	var last []byte
	row := tx.QueryRowContext(ctx, `SELECT size, last_leaf FROM audit_head WHERE id = 1`+s.d.lockHead)
	if err = row.Scan(&size, &last); err != nil {
		return fmt.Errorf("audit append: read head: %w", err)
	}
	recs, err := fn(size, last)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return tx.Rollback()
	}
	for i, r := range recs {
		if r.Index != size+int64(i) {
			return fmt.Errorf("audit append: record %d has index %d, want %d", i, r.Index, size+int64(i))
		}
	}
	for start := 0; start < len(recs); start += maxRowsPerInsert {
		chunk := recs[start:min(start+maxRowsPerInsert, len(recs))]
		var b strings.Builder
		b.WriteString(`INSERT INTO audit_events (idx, id, ts, body, leaf_hash) VALUES `)
		args := make([]any, 0, 5*len(chunk))
		for i, r := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?)")
			args = append(args, r.Index, r.ID, r.Time.UnixNano(), r.Body, r.LeafHash)
		}
		if _, err = tx.ExecContext(ctx, s.d.q(b.String()), args...); err != nil {
			return fmt.Errorf("audit append: insert: %w", err)
		}
	}
	lastRec := recs[len(recs)-1]
	if _, err = tx.ExecContext(ctx, s.d.q(`UPDATE audit_head SET size = ?, last_leaf = ? WHERE id = 1`), lastRec.Index+1, lastRec.LeafHash); err != nil {
		return fmt.Errorf("audit append: update head: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("audit append: commit: %w", err)
	}
	return nil
}

func (s *sqlStore) AuditSize(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT size FROM audit_head WHERE id = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit size: %w", err)
	}
	return n, nil
}

// scanPage bounds how many rows one ScanAudit query holds open, so a scan of
// millions of events neither pins a read transaction nor buffers everything.
const scanPage = 10000

func (s *sqlStore) ScanAudit(ctx context.Context, from int64, fn func(AuditRecord) error) error {
	for {
		rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT idx, id, ts, body, leaf_hash FROM audit_events WHERE idx >= ? ORDER BY idx LIMIT ?`), from, scanPage)
		if err != nil {
			return fmt.Errorf("audit scan: %w", err)
		}
		n := 0
		for rows.Next() {
			var r AuditRecord
			var ts int64
			if err := rows.Scan(&r.Index, &r.ID, &ts, &r.Body, &r.LeafHash); err != nil {
				rows.Close()
				return fmt.Errorf("audit scan: %w", err)
			}
			r.Time = time.Unix(0, ts).UTC()
			n++
			from = r.Index + 1
			if err := fn(r); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("audit scan: %w", err)
		}
		if n < scanPage {
			return nil
		}
	}
}

func (s *sqlStore) AuditLeaves(ctx context.Context, from, to int64) ([][]byte, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT leaf_hash FROM audit_events WHERE idx >= ? AND idx < ? ORDER BY idx`), from, to)
	if err != nil {
		return nil, fmt.Errorf("audit leaves: %w", err)
	}
	defer rows.Close()
	out := make([][]byte, 0, max(0, min(to-from, scanPage)))
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("audit leaves: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit leaves: %w", err)
	}
	return out, nil
}

func (s *sqlStore) AuditByID(ctx context.Context, id string) (AuditRecord, error) {
	var r AuditRecord
	var ts int64
	err := s.r.QueryRowContext(ctx, s.d.q(`SELECT idx, id, ts, body, leaf_hash FROM audit_events WHERE id = ?`), id).
		Scan(&r.Index, &r.ID, &ts, &r.Body, &r.LeafHash)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("audit event %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("audit event lookup: %w", err)
	}
	r.Time = time.Unix(0, ts).UTC()
	return r, nil
}

func (s *sqlStore) PutCheckpoint(ctx context.Context, c Checkpoint) error {
	_, err := s.w.ExecContext(ctx, s.d.q(`INSERT INTO audit_checkpoints (size, root, ts, note) VALUES (?,?,?,?) ON CONFLICT (size) DO NOTHING`),
		c.Size, c.Root, c.Time.UnixNano(), c.Note)
	if err != nil {
		return fmt.Errorf("put checkpoint: %w", err)
	}
	return nil
}

func (s *sqlStore) LatestCheckpoint(ctx context.Context) (Checkpoint, error) {
	var c Checkpoint
	var ts int64
	err := s.r.QueryRowContext(ctx, `SELECT size, root, ts, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).
		Scan(&c.Size, &c.Root, &ts, &c.Note)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("latest checkpoint: %w", ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("latest checkpoint: %w", err)
	}
	c.Time = time.Unix(0, ts).UTC()
	return c, nil
}

func (s *sqlStore) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT size, root, ts, note FROM audit_checkpoints ORDER BY size`)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var c Checkpoint
		var ts int64
		if err := rows.Scan(&c.Size, &c.Root, &ts, &c.Note); err != nil {
			return nil, fmt.Errorf("list checkpoints: %w", err)
		}
		c.Time = time.Unix(0, ts).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Revoke(ctx context.Context, r Revocation) error {
	_, err := s.w.ExecContext(ctx, s.d.q(`INSERT INTO revocations (jti, expires_at, revoked_at, reason) VALUES (?,?,?,?) ON CONFLICT (jti) DO NOTHING`),
		r.JTI, r.ExpiresAt.UnixNano(), r.RevokedAt.UnixNano(), r.Reason)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	return nil
}

func (s *sqlStore) Revocations(ctx context.Context, now time.Time) ([]Revocation, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT jti, expires_at, revoked_at, reason FROM revocations WHERE expires_at > ?`), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("list revocations: %w", err)
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var exp, at int64
		if err := rows.Scan(&r.JTI, &exp, &at, &r.Reason); err != nil {
			return nil, fmt.Errorf("list revocations: %w", err)
		}
		r.ExpiresAt, r.RevokedAt = time.Unix(0, exp).UTC(), time.Unix(0, at).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list revocations: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Close() error {
	var first error
	for _, c := range s.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
