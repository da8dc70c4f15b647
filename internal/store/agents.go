package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Agent is an enrolled network-resident agent. Certificates the gateway
// signs for it carry Epoch; a new enrollment bumps it, so certificates from
// an earlier enrollment stop working.
type Agent struct {
	Name        string      `json:"name"`
	Epoch       int64       `json:"epoch"`
	EnrolledAt  time.Time   `json:"enrolled_at"`
	RevokedAt   time.Time   `json:"revoked_at,omitzero"`
	Version     string      `json:"version,omitempty"`
	Connections []AgentConn `json:"connections"`
	LastSeen    time.Time   `json:"last_seen,omitzero"`
	CertExpires time.Time   `json:"cert_expires,omitzero"`
}

// AgentConn is a connection an agent serves, as the gateway knows it: no
// address, no credential.
type AgentConn struct {
	Name              string   `json:"name"`
	Type              string   `json:"type"`
	Database          string   `json:"database,omitempty"`
	Databases         []string `json:"databases,omitempty"`
	ReadOnly          bool     `json:"read_only,omitempty"`
	ReadOnlyFunctions []string `json:"read_only_functions,omitempty"`
}

// Revoked reports whether the agent has been cut off.
func (a Agent) Revoked() bool { return !a.RevokedAt.IsZero() }

// EnrollToken is a one-time enrollment token; only a hash of its secret is
// kept.
type EnrollToken struct {
	ID        string
	Name      string
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AgentSeen is what a gateway learns from a connected agent.
type AgentSeen struct {
	Name        string
	Version     string
	Connections []AgentConn
	Time        time.Time
	CertExpires time.Time
}

// Enrollment token failures, after the token was found.
var (
	ErrTokenUsed    = errors.New("enrollment token already used")
	ErrTokenExpired = errors.New("enrollment token expired")
)

func (s *sqlStore) PutEnrollToken(ctx context.Context, t EnrollToken) error {
	_, err := s.w.ExecContext(ctx, s.d.q(`INSERT INTO agent_enroll_tokens (id, name, hash, created_at, expires_at, used_at) VALUES (?,?,?,?,?,0)`),
		t.ID, t.Name, t.Hash, t.CreatedAt.UnixNano(), t.ExpiresAt.UnixNano())
	if err != nil {
		return fmt.Errorf("put enroll token: %w", err)
	}
	return nil
}

func (s *sqlStore) EnrollAgent(ctx context.Context, name, id string, hash []byte, now time.Time) (a Agent, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return a, fmt.Errorf("enroll agent: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var (
		stored        []byte
		expires, used int64
	)
	// A token presented for another name is as good as unknown, and is
	// not used up.
	err = tx.QueryRowContext(ctx, s.d.q(`SELECT hash, expires_at, used_at FROM agent_enroll_tokens WHERE id = ? AND name = ?`+s.d.lockHead), id, name).
		Scan(&stored, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(stored, hash) != 1) {
		return a, fmt.Errorf("enroll agent: token: %w", ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("enroll agent: %w", err)
	}
	switch {
	case used != 0:
		return a, fmt.Errorf("enroll agent %s: %w", name, ErrTokenUsed)
	case now.UnixNano() >= expires:
		return a, fmt.Errorf("enroll agent %s: %w", name, ErrTokenExpired)
	}
	if _, err = tx.ExecContext(ctx, s.d.q(`UPDATE agent_enroll_tokens SET used_at = ? WHERE id = ?`), now.UnixNano(), id); err != nil {
		return a, fmt.Errorf("enroll agent: use token: %w", err)
	}
	var epoch int64
	err = tx.QueryRowContext(ctx, s.d.q(`INSERT INTO agents (name, epoch, enrolled_at, revoked_at) VALUES (?, 1, ?, 0)
		ON CONFLICT (name) DO UPDATE SET epoch = agents.epoch + 1, enrolled_at = excluded.enrolled_at, revoked_at = 0
		RETURNING epoch`), name, now.UnixNano()).Scan(&epoch)
	if err != nil {
		return a, fmt.Errorf("enroll agent %s: %w", name, err)
	}
	if err = tx.Commit(); err != nil {
		return a, fmt.Errorf("enroll agent %s: commit: %w", name, err)
	}
	return s.GetAgent(ctx, name)
}

const agentColumns = `name, epoch, enrolled_at, revoked_at, version, connections, last_seen, cert_expires`

func scanAgent(row interface{ Scan(...any) error }) (Agent, error) {
	var a Agent
	var enrolled, revoked, seen, certExp int64
	var conns string
	if err := row.Scan(&a.Name, &a.Epoch, &enrolled, &revoked, &a.Version, &conns, &seen, &certExp); err != nil {
		return a, err
	}
	a.EnrolledAt = time.Unix(0, enrolled).UTC()
	a.RevokedAt = unixOrZero(revoked)
	a.LastSeen = unixOrZero(seen)
	a.CertExpires = unixOrZero(certExp)
	if err := json.Unmarshal([]byte(conns), &a.Connections); err != nil || a.Connections == nil {
		a.Connections = []AgentConn{}
	}
	return a, nil
}

func unixOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (s *sqlStore) GetAgent(ctx context.Context, name string) (Agent, error) {
	a, err := scanAgent(s.r.QueryRowContext(ctx, s.d.q(`SELECT `+agentColumns+` FROM agents WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("agent %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("agent %q: %w", name, err)
	}
	return a, nil
}

func (s *sqlStore) ListAgents(ctx context.Context) ([]Agent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+agentColumns+` FROM agents ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

func (s *sqlStore) RevokeAgent(ctx context.Context, name string, now time.Time) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke agent: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// Unused enrollment tokens for the name die with it, so a token handed
	// out before the revocation cannot bring the agent back.
	if _, err = tx.ExecContext(ctx, s.d.q(`UPDATE agent_enroll_tokens SET used_at = ? WHERE name = ? AND used_at = 0`), now.UnixNano(), name); err != nil {
		return fmt.Errorf("revoke agent %s: tokens: %w", name, err)
	}
	res, err := tx.ExecContext(ctx, s.d.q(`UPDATE agents SET revoked_at = ? WHERE name = ? AND revoked_at = 0`), now.UnixNano(), name)
	if err != nil {
		return fmt.Errorf("revoke agent %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err = tx.QueryRowContext(ctx, s.d.q(`SELECT 1 FROM agents WHERE name = ?`), name).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("agent %q: %w", name, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("revoke agent %s: %w", name, err)
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("revoke agent %s: commit: %w", name, err)
	}
	return nil
}

func (s *sqlStore) AgentSeen(ctx context.Context, a AgentSeen) error {
	conns, _ := json.Marshal(a.Connections)
	if a.Connections == nil {
		conns = []byte("[]")
	}
	var certExp int64
	if !a.CertExpires.IsZero() {
		certExp = a.CertExpires.UnixNano()
	}
	_, err := s.w.ExecContext(ctx, s.d.q(`UPDATE agents SET version = ?, connections = ?, last_seen = ?, cert_expires = ? WHERE name = ?`),
		a.Version, string(conns), a.Time.UnixNano(), certExp, a.Name)
	if err != nil {
		return fmt.Errorf("agent seen %s: %w", a.Name, err)
	}
	return nil
}
