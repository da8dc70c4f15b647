package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
	for start := 0; start < len(b.Statements); start += maxRowsPerInsert / 3 {
		chunk := b.Statements[start:min(start+maxRowsPerInsert/3, len(b.Statements))]
		var q strings.Builder
		q.WriteString(`INSERT INTO rec_statements (session, seq, ts, duration, statement, fingerprint, class, params, decision, reason, nrows, error) VALUES `)
		args := make([]any, 0, 12*len(chunk))
		for i, x := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
			params, _ := json.Marshal(x.Params)
			args = append(args, x.Session, x.Seq, x.Time.UnixNano(), int64(x.Duration), x.Statement, x.Fingerprint, x.Class, string(params), x.Decision, x.Reason, x.Rows, x.Error)
		}
		q.WriteString(` ON CONFLICT (session, seq) DO NOTHING`)
		if _, err = tx.ExecContext(ctx, s.d.q(q.String()), args...); err != nil {
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
		(SELECT COUNT(*) FROM rec_statements st WHERE st.session = rec_sessions.id)
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
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT session, seq, ts, duration, statement, fingerprint, class, params, decision, reason, nrows, error FROM rec_statements WHERE session = ? ORDER BY seq`), session)
	if err != nil {
		return nil, fmt.Errorf("session statements: %w", err)
	}
	defer rows.Close()
	var out []RecStatement
	for rows.Next() {
		var x RecStatement
		var ts, dur int64
		var params string
		if err := rows.Scan(&x.Session, &x.Seq, &ts, &dur, &x.Statement, &x.Fingerprint, &x.Class, &params, &x.Decision, &x.Reason, &x.Rows, &x.Error); err != nil {
			return nil, fmt.Errorf("session statements: %w", err)
		}
		x.Time, x.Duration = time.Unix(0, ts).UTC(), time.Duration(dur)
		json.Unmarshal([]byte(params), &x.Params)
		out = append(out, x)
	}
	return out, rows.Err()
}
