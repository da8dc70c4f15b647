package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a row changed since it was read.
var ErrConflict = errors.New("changed concurrently")

// AuditRecord is one stored leaf of the audit log. Body is the canonical
// event encoding whose RFC 6962 leaf hash is LeafHash.
type AuditRecord struct {
	Index    int64
	ID       string
	Time     time.Time
	Body     []byte
	LeafHash []byte
}

// Checkpoint is a signed statement of the audit tree at Size leaves.
type Checkpoint struct {
	Size int64
	Root []byte
	Time time.Time
	// Note is the signed checkpoint in golang.org/x/mod/sumdb/note format.
	Note []byte
}

// Revocation marks a token id as unusable until ExpiresAt, after which the
// token would be rejected anyway and the row may be pruned.
type Revocation struct {
	JTI       string
	ExpiresAt time.Time
	RevokedAt time.Time
	Reason    string
}

// AppendFunc builds the records to append, given the current log size and the
// leaf hash of the last record (nil for an empty log). It runs inside the
// append transaction with the log head locked, so it sees a consistent head
// even when several gateway nodes share one store.
type AppendFunc func(size int64, lastLeaf []byte) ([]AuditRecord, error)

// Store is everything Gatehouse keeps. Implementations are safe for
// concurrent use.
type Store interface {
	// AppendAudit appends the records built by fn in one durable transaction.
	AppendAudit(ctx context.Context, fn AppendFunc) error
	// AuditSize is the number of records in the log.
	AuditSize(ctx context.Context) (int64, error)
	// ScanAudit calls fn for every record with Index >= from, in index order,
	// until fn returns an error or the log ends.
	ScanAudit(ctx context.Context, from int64, fn func(AuditRecord) error) error
	// AuditByID finds a record by its event id.
	AuditByID(ctx context.Context, id string) (AuditRecord, error)
	// AuditLeaves returns the stored leaf hashes of records from <= index <
	// to, in index order; fewer than to-from when records are missing.
	AuditLeaves(ctx context.Context, from, to int64) ([][]byte, error)

	// PutCheckpoint stores a signed checkpoint.
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	// LatestCheckpoint returns the checkpoint with the largest size, or ErrNotFound.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// Checkpoints lists all checkpoints by increasing size.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)

	// Revoke records a revocation; revoking twice is not an error.
	Revoke(ctx context.Context, r Revocation) error
	// Revocations lists revocations that have not yet expired at now.
	Revocations(ctx context.Context, now time.Time) ([]Revocation, error)

	// PutRecordings writes session recordings.
	PutRecordings(ctx context.Context, b RecBatch) error
	// ListSessions lists recorded sessions, newest first.
	ListSessions(ctx context.Context, limit int) ([]RecSession, error)
	// SessionStatements lists a session's statements in order.
	SessionStatements(ctx context.Context, session string) ([]RecStatement, error)

	// PutEnrollToken stores a new agent enrollment token (its hash).
	PutEnrollToken(ctx context.Context, t EnrollToken) error
	// EnrollAgent uses the token for name with this id and secret hash,
	// once and before it expires, and enrolls the agent: a new row, or a
	// bumped epoch and a cleared revocation for a known name.
	EnrollAgent(ctx context.Context, name, id string, hash []byte, now time.Time) (Agent, error)
	// GetAgent finds an enrolled agent, or ErrNotFound.
	GetAgent(ctx context.Context, name string) (Agent, error)
	// ListAgents lists enrolled agents by name.
	ListAgents(ctx context.Context) ([]Agent, error)
	// RevokeAgent cuts an agent off (and voids its unused tokens).
	RevokeAgent(ctx context.Context, name string, now time.Time) error
	// AgentSeen records a heartbeat and what the agent serves.
	AgentSeen(ctx context.Context, a AgentSeen) error

	// PutApproval inserts a new approval row.
	PutApproval(ctx context.Context, a ApprovalRow) error
	// UpdateApproval replaces an approval row if its version is still
	// a.Version-1 (optimistic concurrency), else returns ErrConflict.
	UpdateApproval(ctx context.Context, a ApprovalRow) error
	// GetApproval reads one approval.
	GetApproval(ctx context.Context, id string) (ApprovalRow, error)
	// ListApprovals lists approvals, newest first; an empty status lists all.
	ListApprovals(ctx context.Context, status string, limit int) ([]ApprovalRow, error)

	// Close releases the store.
	Close() error
}

// RecSession is a recorded session.
type RecSession struct {
	ID          string    `json:"id"`
	Protocol    string    `json:"protocol"`
	Connection  string    `json:"connection"`
	Principal   string    `json:"principal"`
	OnBehalfOf  string    `json:"on_behalf_of,omitempty"`
	Database    string    `json:"database,omitempty"`
	Source      string    `json:"source,omitempty"`
	Application string    `json:"application,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end,omitzero"`
	EndReason   string    `json:"end_reason,omitempty"`
	Statements  int64     `json:"statements"`
}

// RecEnd marks a session's end.
type RecEnd struct {
	ID     string
	End    time.Time
	Reason string
}

// RecStatement is one recorded statement.
type RecStatement struct {
	Session     string        `json:"session"`
	Seq         int64         `json:"seq"`
	Time        time.Time     `json:"time"`
	Duration    time.Duration `json:"duration_ns"`
	Statement   string        `json:"statement"`
	Fingerprint string        `json:"fingerprint,omitempty"`
	Class       string        `json:"class,omitempty"`
	Params      []string      `json:"params,omitempty"`
	Decision    string        `json:"decision"`
	Reason      string        `json:"reason,omitempty"`
	Rows        int64         `json:"rows"`
	Error       string        `json:"error,omitempty"`
}

// RecBatch is what one PutRecordings writes.
type RecBatch struct {
	Sessions   []RecSession
	Ends       []RecEnd
	Statements []RecStatement
}

// ApprovalRow is one approval request or access grant. Data is the
// approval package's JSON; the other columns are what lookups filter on.
type ApprovalRow struct {
	ID        string
	Kind      string // statement or grant
	Status    string // pending, approved, denied, expired, used
	Principal string
	Key       string // statement fingerprint, or connection/role for a grant
	Created   time.Time
	Expires   time.Time
	Version   int64
	Data      []byte
}
