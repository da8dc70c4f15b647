package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"golang.org/x/mod/sumdb/note"
)

// Local performs admin operations directly on the gateway's store and data
// directory. The gateway's own API uses it, and so does the CLI on the
// gateway host.
type Local struct {
	Store    store.Store
	Identity *identity.Service
	Verifier note.Verifier
	// AuditVerify is what VerifyAudit checks beyond the store (the
	// checkpoint file, the grace for unsigned events).
	AuditVerify audit.VerifyOptions
	// AuditErr, if set, says why this process's audit log refuses to
	// sign; VerifyAudit reports it.
	AuditErr func() error
	// Policies returns the policy set to test against.
	Policies func() (*policy.Set, error)
	// RevokeFor bounds how long a revocation by id is kept: no token lives
	// longer than the identity's maximum TTL plus clock skew.
	RevokeFor time.Duration
	Now       func() time.Time
	// Approvals serves approval and access-grant operations; nil when the
	// process has none configured.
	Approvals *approval.Service
	// Connections, if set, lists the connections this gateway knows (its
	// config's and those enrolled agents serve): a token naming none of
	// them is refused at issue, not found out at connect.
	Connections func(ctx context.Context) ([]string, error)
}

var _ Service = (*Local)(nil)

func (l *Local) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Local) IssueToken(ctx context.Context, req identity.IssueRequest) (string, identity.Claims, error) {
	if err := l.checkConnections(ctx, req.Connections); err != nil {
		return "", identity.Claims{}, err
	}
	tok, c, err := l.Identity.Issue(ctx, req)
	if err != nil {
		return "", c, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return tok, c, nil
}

// checkConnections refuses connection names and patterns that match no
// connection the gateway knows.
func (l *Local) checkConnections(ctx context.Context, want []string) error {
	if l.Connections == nil || len(want) == 0 {
		return nil
	}
	known, err := l.Connections(ctx)
	if err != nil {
		return fmt.Errorf("list connections: %w", err)
	}
	for _, p := range want {
		if !slices.ContainsFunc(known, identity.Claims{Connections: []string{p}}.AllowsConnection) {
			return fmt.Errorf("%w: no connection matches --connection %q (this gateway knows: %s); connections are those under connections: in the gateway's config and those enrolled agents serve", ErrBadInput, p, strings.Join(known, ", "))
		}
	}
	return nil
}

func (l *Local) InspectToken(ctx context.Context, token string) (identity.Claims, error) {
	return l.Identity.Verify(ctx, token)
}

func (l *Local) RevokeToken(ctx context.Context, jti, reason string) error {
	if jti == "" || len(jti) > 128 {
		return fmt.Errorf("%w: a token id (jti) is required", ErrBadInput)
	}
	return l.Identity.Revoke(ctx, jti, l.now().Add(l.RevokeFor), reason)
}

func (l *Local) RotateKeys(ctx context.Context) (string, error) {
	return l.Identity.Rotate(ctx)
}

func (l *Local) VerifyAudit(ctx context.Context) (audit.Report, error) {
	return l.VerifyAuditWith(ctx, l.Verifier, l.AuditVerify)
}

// VerifyAuditWith verifies the store under v with opts (a pinned copy of
// the verifier key, more checkpoint files). A log that verifies still fails
// when this process's audit log refuses to sign.
func (l *Local) VerifyAuditWith(ctx context.Context, v note.Verifier, opts audit.VerifyOptions) (audit.Report, error) {
	rep, err := audit.Verify(ctx, l.Store, v, opts)
	if err == nil && l.AuditErr != nil {
		err = l.AuditErr()
	}
	return rep, err
}

func (l *Local) TailAudit(ctx context.Context, n int) ([]json.RawMessage, error) {
	if n <= 0 {
		return nil, fmt.Errorf("%w: -n must be positive", ErrBadInput)
	}
	size, err := l.Store.AuditSize(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, min(int64(n), size))
	err = l.Store.ScanAudit(ctx, max(0, size-int64(n)), func(r store.AuditRecord) error {
		out = append(out, json.RawMessage(r.Body))
		return nil
	})
	return out, err
}

func (l *Local) ExportAudit(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriter(w)
	err := l.Store.ScanAudit(ctx, 0, func(r store.AuditRecord) error {
		bw.Write(r.Body)
		return bw.WriteByte('\n')
	})
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	return bw.Flush()
}

func (l *Local) ProveEvent(ctx context.Context, id string) (audit.InclusionProof, error) {
	return audit.Prove(ctx, l.Store, id)
}

func (l *Local) TestPolicy(ctx context.Context, in policy.TestInput) (policy.Decision, error) {
	set, err := l.Policies()
	if err != nil {
		return policy.Decision{}, err
	}
	d, err := set.Evaluate(in)
	if err != nil {
		return d, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return d, nil
}

func (l *Local) ListSessions(ctx context.Context, limit int) ([]store.RecSession, error) {
	if limit <= 0 || limit > 10000 {
		return nil, fmt.Errorf("%w: limit must be between 1 and 10000", ErrBadInput)
	}
	return l.Store.ListSessions(ctx, limit)
}

func (l *Local) SessionStatements(ctx context.Context, id string) ([]store.RecStatement, error) {
	st, err := l.Store.SessionStatements(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(st) == 0 {
		// Tell an unknown session from one that ran nothing.
		sessions, err := l.Store.ListSessions(ctx, 10000)
		if err != nil {
			return nil, err
		}
		for _, s := range sessions {
			if s.ID == id {
				return st, nil
			}
		}
		return nil, fmt.Errorf("session %q: %w", id, store.ErrNotFound)
	}
	return st, nil
}
