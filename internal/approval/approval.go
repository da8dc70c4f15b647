package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Kinds and statuses.
const (
	KindStatement = "statement"
	KindGrant     = "grant"

	Pending  = "pending"
	Approved = "approved"
	Denied   = "denied"
	Expired  = "expired"
	Used     = "used"
)

// Errors callers tell apart.
var (
	ErrNotReviewer  = errors.New("not a reviewer for this approval")
	ErrNotVisible   = errors.New("not permitted to see this approval")
	ErrSelfApproval = errors.New("nobody may approve their own request or one made on their behalf")
	ErrNotPending   = errors.New("approval is no longer pending")
	ErrBadRequest   = errors.New("bad approval request")
)

// The policy actions an Authorizer decides: approving or denying an
// approval, and seeing it.
const (
	ActionDecide = "approval:decide"
	ActionView   = "approval:view"
)

// Approval is one request for a human decision.
type Approval struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`

	// Who asked: the Cedar UID, the token subject and the human an agent
	// acts for.
	Principal  string `json:"principal"`
	Subject    string `json:"subject"`
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	Connection string `json:"connection"`

	// For held operations: exactly what runs, for reviewers (and only for
	// them and the requester: audit events carry Statement); Statement,
	// the normalised text without literal values; and the fingerprint of
	// Operation that binds the approval to it.
	Operation   *Operation `json:"operation,omitempty"`
	Statement   string     `json:"statement,omitempty"`
	Fingerprint string     `json:"fingerprint,omitempty"`
	Policy      string     `json:"policy,omitempty"`

	// For grants: the role asked for and for how long.
	Role     string        `json:"role,omitempty"`
	GrantFor time.Duration `json:"grant_for_ns,omitempty"`

	Group    string        `json:"group"`    // reviewer group
	Required int           `json:"required"` // approvals needed
	Window   time.Duration `json:"window_ns,omitempty"`
	Reason   string        `json:"reason,omitempty"`

	Reviews []Review  `json:"reviews,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Decided is when it was approved or denied; for a grant, the grant
	// runs from Decided for GrantFor.
	Decided time.Time `json:"decided,omitzero"`
	UsedAt  time.Time `json:"used_at,omitzero"`

	version int64
}

// Review is one reviewer's decision.
type Review struct {
	By string `json:"by"`
	// For is the human the reviewer acted for, when an agent reviewed
	// (only if a policy lets agents decide).
	For     string    `json:"for,omitempty"`
	Approve bool      `json:"approve"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// Reviewer is who acts on an approval, as their token says. Admin is an
// administrator using the CLI on the gateway host, who may decide and see
// every approval without asking policy.
type Reviewer struct {
	ID string // user or agent name; cli:USER@HOST for Admin
	// Type is the principal's Cedar type: "User" for a human, "Agent".
	// Anything but "User" is not a human.
	Type       string
	OnBehalfOf string // the human an agent reviewer acts for
	Groups     []string
	// Scopes and Connections (the token's patterns) describe an agent
	// reviewer to policy.
	Scopes      []string
	Connections []string
	Admin       bool
}

// Principal is the reviewer's Cedar UID ("" for a CLI administrator).
func (r Reviewer) Principal() string {
	if r.Type == "" {
		return ""
	}
	return fmt.Sprintf("%s::%q", r.Type, r.ID)
}

// Human reports whether the reviewer is a User principal.
func (r Reviewer) Human() bool { return r.Type == "User" }

// RequestedBy reports whether r is who asked: the same principal acting
// for the same human.
func (a *Approval) RequestedBy(r Reviewer) bool {
	return r.Type != "" && r.Principal() == a.Principal && r.OnBehalfOf == a.OnBehalfOf
}

// RequestedFor reports whether r is the human the requesting agent acted
// for.
func (a *Approval) RequestedFor(r Reviewer) bool {
	return a.OnBehalfOf != "" && r.Human() && r.ID == a.OnBehalfOf
}

// selfReview reports whether r is, or acts for, who asked or whom it was
// asked for: no policy lets anyone approve their own request.
func (a *Approval) selfReview(r Reviewer) bool {
	switch {
	case r.ID == "", r.ID == a.Subject, r.ID == a.OnBehalfOf, r.ID == a.Principal:
		return true
	case r.Type != "" && r.Principal() == a.Principal:
		return true
	case r.OnBehalfOf != "" && (r.OnBehalfOf == a.OnBehalfOf || r.OnBehalfOf == a.Subject):
		return true
	}
	return false
}

// Authorizer decides whether reviewer r may take action (ActionDecide or
// ActionView) on a: nil allows, an error says why not. Gatehouse asks
// Cedar (admin.ApprovalAuthorizer); the approval package itself does not
// import policy. It is never asked about Admin reviewers, and a reviewer
// who asked (or was asked for) may never decide, whatever it answers.
type Authorizer func(ctx context.Context, r Reviewer, action string, a *Approval) error

// DefaultAuthorize is the rule without an Authorizer, the same as the
// starter policies': humans in the reviewer group decide; they, the
// requester and the human it acted for see the approval.
func DefaultAuthorize(_ context.Context, r Reviewer, action string, a *Approval) error {
	reviewer := r.Human() && slices.Contains(r.Groups, a.Group)
	switch {
	case reviewer:
		return nil
	case action == ActionView && (a.RequestedBy(r) || a.RequestedFor(r)):
		return nil
	case action == ActionDecide && !r.Human():
		return fmt.Errorf("%s is not a human: reviewers are User principals in group %q", r.Principal(), a.Group)
	}
	return fmt.Errorf("reviewers are humans in group %q", a.Group)
}

// GrantExpires is when an approved grant stops applying.
func (a *Approval) GrantExpires() time.Time { return a.Decided.Add(a.GrantFor) }

// Options configure a Service.
type Options struct {
	Store store.Store
	Audit *audit.Log
	// Timeout is how long a request waits for a decision (default 10m).
	Timeout time.Duration
	// Poll is how often a waiter rereads the store, to see decisions made
	// by other processes (the CLI, other nodes) (default 500ms).
	Poll     time.Duration
	Notifier *Notifier
	// Authorize decides who may decide and see approvals; nil means
	// DefaultAuthorize.
	Authorize Authorizer
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service manages approvals.
type Service struct {
	o Options

	mu      sync.Mutex
	waiters map[string][]chan struct{}

	refreshing sync.Mutex // held by the one goroutine rereading grants
	grantsMu   sync.Mutex
	grants     []*Approval // approved grants, refreshed
	grantsAt   time.Time
	grantsVer  uint64
	grantsSeen string
}

// New builds a Service.
func New(o Options) *Service {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, waiters: map[string][]chan struct{}{}}
}

// Timeout is how long requests wait.
func (s *Service) Timeout() time.Duration { return s.o.Timeout }

func newID() string {
	var b [9]byte
	rand.Read(b[:])
	return "apr_" + hex.EncodeToString(b[:])
}

// HoldSpec describes an operation to hold for approval.
type HoldSpec struct {
	Operation Operation
	// Subject is the token subject of Operation.Principal.
	Subject string
	// Summary is the operation without literal values (normalised SQL),
	// what audit events record of it.
	Summary               string
	Policy, Reason, Group string
	Required              int
	Window                time.Duration
}

// RequestOperation records a pending approval for an operation, or returns
// the pending one already open for the same operation (the same
// fingerprint), so a retried statement does not spam reviewers.
func (s *Service) RequestOperation(ctx context.Context, sp HoldSpec) (*Approval, error) {
	op := sp.Operation
	if sp.Group == "" || op.Principal == "" || op.Connection == "" || op.Action == "" || op.Text == "" {
		return nil, fmt.Errorf("%w: a reviewer group, principal, connection, action and text are required", ErrBadRequest)
	}
	fp := op.Fingerprint()
	if existing, err := s.find(ctx, Pending, op.Principal, fp); err == nil && existing != nil {
		return existing, nil
	}
	if err := s.capPending(ctx, op.Principal); err != nil {
		return nil, err
	}
	now := s.o.Now().UTC()
	a := &Approval{ID: newID(), Kind: KindStatement, Status: Pending, Principal: op.Principal, Subject: sp.Subject,
		OnBehalfOf: op.OnBehalfOf, Connection: op.Connection, Operation: &op, Statement: sp.Summary, Fingerprint: fp,
		Policy: sp.Policy, Group: sp.Group, Required: max(1, sp.Required), Window: sp.Window, Reason: sp.Reason,
		Created: now, Expires: now.Add(s.o.Timeout)}
	if err := s.insert(ctx, a); err != nil {
		return nil, err
	}
	s.event(a, "approval.requested", Reviewer{}, "")
	s.notify(a)
	return a, nil
}

// GrantSpec describes a just-in-time access request.
type GrantSpec struct {
	Principal, Subject, OnBehalfOf, Connection, Role, Reason string
	For                                                      time.Duration
	Group                                                    string
	Required                                                 int
}

// RequestGrant records a pending request for a time-bound grant.
func (s *Service) RequestGrant(ctx context.Context, sp GrantSpec) (*Approval, error) {
	if sp.Connection == "" || sp.Role == "" || sp.For <= 0 || sp.Principal == "" {
		return nil, fmt.Errorf("%w: connection, role, a positive duration and a principal are required", ErrBadRequest)
	}
	if sp.For > 24*time.Hour {
		return nil, fmt.Errorf("%w: grants last at most 24h", ErrBadRequest)
	}
	if err := s.capPending(ctx, sp.Principal); err != nil {
		return nil, err
	}
	if !roleName(sp.Role) {
		return nil, fmt.Errorf("%w: role must be a short name of letters, digits, '-', '_' and '.'", ErrBadRequest)
	}
	if len(sp.Reason) > 1000 {
		return nil, fmt.Errorf("%w: the reason is longer than 1,000 bytes", ErrBadRequest)
	}
	if sp.Group == "" {
		sp.Group = "admins"
	}
	now := s.o.Now().UTC()
	a := &Approval{ID: newID(), Kind: KindGrant, Status: Pending, Principal: sp.Principal, Subject: sp.Subject,
		OnBehalfOf: sp.OnBehalfOf, Connection: sp.Connection, Role: sp.Role, GrantFor: sp.For, Reason: sp.Reason,
		Group: sp.Group, Required: max(1, sp.Required), Created: now, Expires: now.Add(s.o.Timeout)}
	if err := s.insert(ctx, a); err != nil {
		return nil, err
	}
	s.event(a, "approval.requested", Reviewer{}, "")
	s.notify(a)
	return a, nil
}

// Get reads an approval, expiring it first if its time is up.
func (s *Service) Get(ctx context.Context, id string) (*Approval, error) {
	row, err := s.o.Store.GetApproval(ctx, id)
	if err != nil {
		return nil, err
	}
	a, err := decode(row)
	if err != nil {
		return nil, err
	}
	return s.expire(ctx, a)
}

// List lists approvals with the given status ("" for all), expiring stale
// pending ones.
func (s *Service) List(ctx context.Context, status string) ([]*Approval, error) {
	rows, err := s.o.Store.ListApprovals(ctx, status, 1000)
	if err != nil {
		return nil, err
	}
	out := make([]*Approval, 0, len(rows))
	for _, row := range rows {
		a, err := decode(row)
		if err != nil {
			return nil, err
		}
		if a, err = s.expire(ctx, a); err != nil {
			return nil, err
		}
		if status == "" || a.Status == status {
			out = append(out, a)
		}
	}
	return out, nil
}

// GetFor reads an approval for r: only reviewers (who may decide it) and
// its requester see it.
func (s *Service) GetFor(ctx context.Context, r Reviewer, id string) (*Approval, error) {
	a, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.mayView(ctx, r, a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotVisible, err)
	}
	return a, nil
}

// ListFor lists the approvals r may see, with the given status ("" for all).
func (s *Service) ListFor(ctx context.Context, r Reviewer, status string) ([]*Approval, error) {
	all, err := s.List(ctx, status)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, a := range all {
		if s.mayView(ctx, r, a) == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// may asks the Authorizer whether r may take action on a; administrators
// on the gateway host may do everything.
func (s *Service) may(ctx context.Context, r Reviewer, action string, a *Approval) error {
	if r.Admin {
		return nil
	}
	auth := s.o.Authorize
	if auth == nil {
		auth = DefaultAuthorize
	}
	return auth(ctx, r, action, a)
}

// mayView: those who may decide an approval see it too, since they must
// read what they approve.
func (s *Service) mayView(ctx context.Context, r Reviewer, a *Approval) error {
	err := s.may(ctx, r, ActionView, a)
	if err != nil && s.may(ctx, r, ActionDecide, a) == nil {
		return nil
	}
	return err
}

// Approve records an approval by r; with enough approvals the request is
// approved.
func (s *Service) Approve(ctx context.Context, id string, r Reviewer, reason string) (*Approval, error) {
	return s.review(ctx, id, r, true, reason)
}

// Deny records a denial by r; one denial decides.
func (s *Service) Deny(ctx context.Context, id string, r Reviewer, reason string) (*Approval, error) {
	return s.review(ctx, id, r, false, reason)
}

func (s *Service) review(ctx context.Context, id string, r Reviewer, approve bool, reason string) (*Approval, error) {
	for range 5 { // retry on concurrent reviews
		a, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		// Who may decide comes first: someone who may not is told nothing
		// about the approval, not even its status.
		if a.selfReview(r) {
			s.event(a, "approval.refused", r, ErrSelfApproval.Error())
			return nil, ErrSelfApproval
		}
		if err := s.may(ctx, r, ActionDecide, a); err != nil {
			s.event(a, "approval.refused", r, err.Error())
			return nil, fmt.Errorf("%w: %w", ErrNotReviewer, err)
		}
		if a.Status != Pending {
			return a, fmt.Errorf("%w (it is %s)", ErrNotPending, a.Status)
		}
		for _, rv := range a.Reviews {
			if rv.By == r.ID || (rv.For != "" && (rv.For == r.ID || rv.For == r.OnBehalfOf)) || (r.OnBehalfOf != "" && rv.By == r.OnBehalfOf) {
				return a, fmt.Errorf("%w: %s has already reviewed it", ErrBadRequest, r.ID)
			}
		}
		now := s.o.Now().UTC()
		a.Reviews = append(a.Reviews, Review{By: r.ID, For: r.OnBehalfOf, Approve: approve, Reason: reason, At: now})
		kind := ""
		switch {
		case !approve:
			a.Status, a.Decided, kind = Denied, now, "approval.denied"
		case countApprovals(a) >= a.Required:
			a.Status, a.Decided, kind = Approved, now, "approval.approved"
		}
		if err := s.update(ctx, a); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		s.event(a, "approval.review", r, reason)
		if kind != "" {
			s.event(a, kind, r, reason)
			s.wake(a.ID)
			if a.Kind == KindGrant {
				s.invalidateGrants()
			}
		}
		return a, nil
	}
	return nil, fmt.Errorf("approval %s: too many concurrent reviews", id)
}

func countApprovals(a *Approval) int {
	n := 0
	for _, r := range a.Reviews {
		if r.Approve {
			n++
		}
	}
	return n
}

// Wait blocks until the approval is decided, expires, or ctx ends.
func (s *Service) Wait(ctx context.Context, id string) (*Approval, error) {
	for {
		ch := s.waitChan(id)
		a, err := s.Get(ctx, id)
		if err != nil {
			s.dropWait(id, ch)
			return nil, err
		}
		if a.Status != Pending {
			s.dropWait(id, ch)
			return a, nil
		}
		t := time.NewTimer(min(s.o.Poll, max(time.Until(a.Expires), time.Millisecond)))
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.dropWait(id, ch)
			return a, ctx.Err()
		}
		t.Stop()
		s.dropWait(id, ch)
	}
}

// Use consumes an approved statement approval for one execution: a single-
// use approval becomes used; one with a window stays approved until the
// window ends. It fails if the approval was already used.
func (s *Service) Use(ctx context.Context, a *Approval) error {
	for range 5 {
		cur, err := s.Get(ctx, a.ID)
		if err != nil {
			return err
		}
		if cur.Status != Approved {
			return fmt.Errorf("%w (it is %s)", ErrNotPending, cur.Status)
		}
		now := s.o.Now().UTC()
		if cur.Window > 0 {
			if now.After(cur.Decided.Add(cur.Window)) {
				cur.Status = Expired
				s.update(ctx, cur)
				return fmt.Errorf("%w (its window ended)", ErrNotPending)
			}
			s.event(cur, "approval.used", Reviewer{}, "")
			return nil
		}
		cur.Status, cur.UsedAt = Used, now
		if err := s.update(ctx, cur); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return err
		}
		s.event(cur, "approval.used", Reviewer{}, "")
		return nil
	}
	return fmt.Errorf("approval %s: concurrent use", a.ID)
}

// FindApproved returns an approved, unused approval for exactly this
// operation (a statement retried after its approval, or within a window):
// the same principal, human, connection, database, action, text and
// parameters.
func (s *Service) FindApproved(ctx context.Context, op Operation) (*Approval, error) {
	return s.find(ctx, Approved, op.Principal, op.Fingerprint())
}

func (s *Service) find(ctx context.Context, status, principal, fingerprint string) (*Approval, error) {
	rows, err := s.o.Store.ListApprovals(ctx, status, 1000)
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		if row.Kind != KindStatement || row.Principal != principal || row.Key != fingerprint {
			continue
		}
		a, err := decode(row)
		if err != nil {
			return nil, err
		}
		if a, err = s.expire(ctx, a); err != nil {
			return nil, err
		}
		if a.Status == status {
			return a, nil
		}
	}
	return nil, nil
}

// expire moves a pending approval past its deadline to expired, and an
// approved window or grant past its end likewise.
func (s *Service) expire(ctx context.Context, a *Approval) (*Approval, error) {
	now := s.o.Now()
	switch {
	case a.Status == Pending && now.After(a.Expires):
	case a.Status == Approved && a.Kind == KindGrant && now.After(a.GrantExpires()):
	case a.Status == Approved && a.Window > 0 && now.After(a.Decided.Add(a.Window)):
	default:
		return a, nil
	}
	a.Status = Expired
	if err := s.update(ctx, a); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return s.Get(ctx, a.ID)
		}
		return nil, err
	}
	s.event(a, "approval.expired", Reviewer{}, "")
	s.wake(a.ID)
	if a.Kind == KindGrant {
		s.invalidateGrants()
	}
	return a, nil
}

func (s *Service) insert(ctx context.Context, a *Approval) error {
	a.version = 1
	row, err := encode(a)
	if err != nil {
		return err
	}
	return s.o.Store.PutApproval(ctx, row)
}

func (s *Service) update(ctx context.Context, a *Approval) error {
	a.version++
	row, err := encode(a)
	if err != nil {
		return err
	}
	if err := s.o.Store.UpdateApproval(ctx, row); err != nil {
		a.version--
		return err
	}
	return nil
}

func encode(a *Approval) (store.ApprovalRow, error) {
	data, err := json.Marshal(a)
	if err != nil {
		return store.ApprovalRow{}, fmt.Errorf("approval encode: %w", err)
	}
	key := a.Fingerprint
	if a.Kind == KindGrant {
		key = a.Connection + "/" + a.Role
	}
	return store.ApprovalRow{ID: a.ID, Kind: a.Kind, Status: a.Status, Principal: a.Principal, Key: key,
		Created: a.Created, Expires: a.Expires, Version: a.version, Data: data}, nil
}

func decode(row store.ApprovalRow) (*Approval, error) {
	var a Approval
	if err := json.Unmarshal(row.Data, &a); err != nil {
		return nil, fmt.Errorf("approval %s: %w", row.ID, err)
	}
	a.Status, a.version = row.Status, row.Version
	return &a, nil
}

func (s *Service) waitChan(id string) chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.waiters[id] = append(s.waiters[id], ch)
	s.mu.Unlock()
	return ch
}

func (s *Service) dropWait(id string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters[id]
	for i, w := range ws {
		if w == ch {
			s.waiters[id] = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(s.waiters[id]) == 0 {
		delete(s.waiters, id)
	}
}

// wake tells in-process waiters to reread an approval.
func (s *Service) wake(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.waiters[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// event audits one step. It records the normalised statement, never the
// operation's exact text, parameters or fingerprint: those carry literal
// values (a fingerprint over a short literal can be reversed by trying
// values), and the approval id links the event to its record.
func (s *Service) event(a *Approval, kind string, by Reviewer, reason string) {
	if s.o.Audit == nil {
		return
	}
	ev := audit.Event{Kind: kind, Principal: a.Principal, OnBehalfOf: a.OnBehalfOf, Connection: a.Connection,
		Decision: a.Status, Reason: reason, Details: map[string]string{"approval": a.ID, "kind": a.Kind, "group": a.Group}}
	if kind == "approval.refused" {
		ev.Decision = "deny"
	}
	if by.ID != "" {
		ev.Details["by"] = by.ID
		if p := by.Principal(); p != "" {
			ev.Details["by_principal"] = p
		}
		if by.OnBehalfOf != "" {
			ev.Details["by_for"] = by.OnBehalfOf
		}
	}
	if a.Statement != "" {
		ev.Details["statement"] = a.Statement
	}
	if a.Operation != nil {
		ev.Action = a.Operation.Action
	}
	if a.Policy != "" {
		ev.Policies = []string{a.Policy}
	}
	if a.Role != "" {
		ev.Details["role"], ev.Details["for"] = a.Role, a.GrantFor.String()
	}
	// Approval steps are rare and must not be lost: wait for durability.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.o.Audit.Append(ctx, ev); err != nil {
		s.o.Logger.Error("audit append failed", "kind", kind, "err", err)
	}
}

func (s *Service) notify(a *Approval) {
	if s.o.Notifier != nil {
		s.o.Notifier.Send(a)
	}
}

// roleName reports whether role is a short plain name: it is shown to
// reviewers and matched by policies, and comes from the requester.
func roleName(role string) bool {
	if role == "" || len(role) > 64 {
		return false
	}
	for _, c := range role {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// MaxPendingPerPrincipal bounds the approvals one principal may have
// waiting at once, so that one agent cannot bury reviewers (or the list
// they read) under requests.
const MaxPendingPerPrincipal = 50

// ErrTooManyPending is returned when a principal has MaxPendingPerPrincipal
// approvals waiting.
var ErrTooManyPending = errors.New("too many approvals waiting for this principal")

func (s *Service) capPending(ctx context.Context, principal string) error {
	rows, err := s.o.Store.ListApprovals(ctx, Pending, 10*MaxPendingPerPrincipal)
	if err != nil {
		return fmt.Errorf("approvals: %w", err)
	}
	n := 0
	for _, r := range rows {
		if a, err := decode(r); err == nil && a.Principal == principal && a.Status == Pending && s.o.Now().Before(a.Expires) {
			n++
		}
	}
	if n >= MaxPendingPerPrincipal {
		return fmt.Errorf("%w: %s has %d (the limit); wait for a decision or for them to expire", ErrTooManyPending, principal, n)
	}
	return nil
}
