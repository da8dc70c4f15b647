package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

func (s *sqlStore) PutApproval(ctx context.Context, a ApprovalRow) error {
	_, err := s.w.ExecContext(ctx, s.d.q(`INSERT INTO approvals (id, kind, status, principal, akey, created, expires, version, data) VALUES (?,?,?,?,?,?,?,?,?)`),
		a.ID, a.Kind, a.Status, a.Principal, a.Key, a.Created.UnixNano(), a.Expires.UnixNano(), a.Version, string(a.Data))
	if err != nil {
		return fmt.Errorf("put approval: %w", err)
	}
	return nil
}

func (s *sqlStore) UpdateApproval(ctx context.Context, a ApprovalRow) error {
	res, err := s.w.ExecContext(ctx, s.d.q(`UPDATE approvals SET status = ?, expires = ?, version = ?, data = ? WHERE id = ? AND version = ?`),
		a.Status, a.Expires.UnixNano(), a.Version, string(a.Data), a.ID, a.Version-1)
	if err != nil {
		return fmt.Errorf("update approval: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("approval %s: %w", a.ID, ErrConflict)
	}
	return nil
}

const approvalCols = `id, kind, status, principal, akey, created, expires, version, data`

func scanApproval(sc interface{ Scan(...any) error }) (ApprovalRow, error) {
	var a ApprovalRow
	var created, expires int64
	var data string
	if err := sc.Scan(&a.ID, &a.Kind, &a.Status, &a.Principal, &a.Key, &created, &expires, &a.Version, &data); err != nil {
		return a, err
	}
	a.Created, a.Expires, a.Data = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC(), []byte(data)
	return a, nil
}

func (s *sqlStore) GetApproval(ctx context.Context, id string) (ApprovalRow, error) {
	a, err := scanApproval(s.r.QueryRowContext(ctx, s.d.q(`SELECT `+approvalCols+` FROM approvals WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("approval %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("get approval: %w", err)
	}
	return a, nil
}

func (s *sqlStore) ListApprovals(ctx context.Context, status string, limit int) ([]ApprovalRow, error) {
	q := `SELECT ` + approvalCols + ` FROM approvals`
	args := []any{}
	if status != "" {
		q += ` WHERE status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY created DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, s.d.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	defer rows.Close()
	var out []ApprovalRow
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, fmt.Errorf("list approvals: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
