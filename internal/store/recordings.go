package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

func (s *sqlStore) PutRecordings(ctx context.Context, b RecBatch) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recordings: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, x := range b.Sessions {
		_, err = tx.ExecContext(ctx, s.d.q(`INSERT INTO rec_sessions (id, protocol, connection, principal, on_behalf_of, db, source, application, started) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING`),
			x.ID, x.Protocol, x.Connection, x.Principal, x.OnBehalfOf, x.Database, x.Source, x.Application, x.Start.UnixNano())
		if err != nil {
			return fmt.Errorf("recordings: session: %w", err)
		}
	}
	// One chunk row per session: statements arrive in order per session.
	chunks := map[string][]RecStatement{}
	var order []string
	for _, x := range b.Statements {
		if _, ok := chunks[x.Session]; !ok {
			order = append(order, x.Session)
		}
		chunks[x.Session] = append(chunks[x.Session], x)
	}
	for _, sess := range order {
		st := chunks[sess]
		data, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("recordings: encode: %w", err)
		}
		_, err = tx.ExecContext(ctx, s.d.q(`INSERT INTO rec_chunks (session, first_seq, n, data) VALUES (?,?,?,?) ON CONFLICT (session, first_seq) DO NOTHING`),
			sess, st[0].Seq, len(st), string(data))
		if err != nil {
			return fmt.Errorf("recordings: statements: %w", err)
		}
	}
	for _, x := range b.Ends {
		if _, err = tx.ExecContext(ctx, s.d.q(`UPDATE rec_sessions SET ended = ?, end_reason = ? WHERE id = ?`), x.End.UnixNano(), x.Reason, x.ID); err != nil {
			return fmt.Errorf("recordings: end: %w", err)
		}
	}
	return tx.Commit()
}

func (s *sqlStore) ListSessions(ctx context.Context, limit int) ([]RecSession, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT id, protocol, connection, principal, on_behalf_of, db, source, application, started, ended, end_reason,
		(SELECT COALESCE(SUM(n), 0) FROM rec_chunks c WHERE c.session = rec_sessions.id)
		FROM rec_sessions ORDER BY started DESC LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []RecSession
	for rows.Next() {
		var x RecSession
		var start, end int64
		if err := rows.Scan(&x.ID, &x.Protocol, &x.Connection, &x.Principal, &x.OnBehalfOf, &x.Database, &x.Source, &x.Application, &start, &end, &x.EndReason, &x.Statements); err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		x.Start = time.Unix(0, start).UTC()
		if end != 0 {
			x.End = time.Unix(0, end).UTC()
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

func (s *sqlStore) SessionStatements(ctx context.Context, session string) ([]RecStatement, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT data FROM rec_chunks WHERE session = ? ORDER BY first_seq`), session)
	if err != nil {
		return nil, fmt.Errorf("session statements: %w", err)
	}
	defer rows.Close()
	var out []RecStatement
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("session statements: %w", err)
		}
		var chunk []RecStatement
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return nil, fmt.Errorf("session statements: %w", err)
		}
		out = append(out, chunk...)
	}
	return out, rows.Err()
}
