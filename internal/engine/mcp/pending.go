package mcp

import (
	"context"
	"sync"
	"time"
)

// A heldQuery is a query whose statement the PostgreSQL engine holds for
// approval. It runs in the background, on its own wire session, from the
// call that started it until the statement is approved and answers, is
// denied, expires, or Options.Hold passes; its outcome is kept for
// approval_status (and for the same query sent again) for ResultTTL.
type heldQuery struct {
	owner string // principal and human: only they may read the outcome
	key   string // owner, connection and SQL: the same query sent again

	held chan struct{} // closed when the approval id is known
	done chan struct{} // closed when out/err are set

	mu         sync.Mutex
	approvalID string
	detached   bool // its call answered; nothing cancels it but Hold and Close
	cancel     context.CancelFunc
	out        *QueryOutput
	err        error
	finished   time.Time
	delivered  bool // the outcome reached the agent once
}

func (q *heldQuery) setApproval(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.approvalID == "" {
		q.approvalID = id
		close(q.held)
	}
}

func (q *heldQuery) id() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.approvalID
}

func (q *heldQuery) finish(out *QueryOutput, err error) {
	q.mu.Lock()
	q.out, q.err, q.finished = out, err, time.Now()
	q.mu.Unlock()
	close(q.done)
}

// outcome returns the finished query's output or error.
func (q *heldQuery) outcome() (*QueryOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.out, q.err
}

// detach keeps the query running after its call answers, if it is held;
// it reports whether it did.
func (q *heldQuery) detach() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.approvalID == "" {
		return false
	}
	q.detached = true
	return true
}

// abandon cancels the query when its caller goes away before the statement
// was held: nothing else will ever read its outcome.
func (q *heldQuery) abandon() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.detached && q.approvalID == "" {
		q.cancel()
	}
}

// pendingCalls indexes the held queries.
type pendingCalls struct {
	ttl time.Duration

	mu    sync.Mutex
	byID  map[string]*heldQuery // approval id → query, once held
	byKey map[string]*heldQuery // same query sent again → query, until delivered
	all   map[*heldQuery]bool   // running, for Close
}

func newPendingCalls(ttl time.Duration) *pendingCalls {
	return &pendingCalls{ttl: ttl, byID: map[string]*heldQuery{}, byKey: map[string]*heldQuery{}, all: map[*heldQuery]bool{}}
}

func (p *pendingCalls) running(q *heldQuery) {
	p.mu.Lock()
	p.all[q] = true
	p.mu.Unlock()
}

func (p *pendingCalls) stopped(q *heldQuery) {
	p.mu.Lock()
	delete(p.all, q)
	p.mu.Unlock()
}

// held indexes q by its approval id and by its query.
func (p *pendingCalls) held(q *heldQuery) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked()
	p.byID[q.id()] = q
	if _, ok := p.byKey[q.key]; !ok {
		p.byKey[q.key] = q
	}
}

// byQuery finds a held query for the same owner, connection and SQL that
// has not yet delivered its outcome.
func (p *pendingCalls) byQuery(key string) *heldQuery {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked()
	return p.byKey[key]
}

// lookup finds a held query by approval id for owner.
func (p *pendingCalls) lookup(owner, id string) *heldQuery {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked()
	q := p.byID[id]
	if q == nil || q.owner != owner {
		return nil // another principal's approval is not theirs to read
	}
	return q
}

// delivered records that q's outcome reached the agent: the same query
// sent again now runs afresh (and needs a fresh approval).
func (p *pendingCalls) delivered(q *heldQuery) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q.mu.Lock()
	q.delivered = true
	q.mu.Unlock()
	if p.byKey[q.key] == q {
		delete(p.byKey, q.key)
	}
}

// sweepLocked forgets outcomes older than the TTL.
func (p *pendingCalls) sweepLocked() {
	now := time.Now()
	for id, q := range p.byID {
		q.mu.Lock()
		old := !q.finished.IsZero() && now.Sub(q.finished) > p.ttl
		q.mu.Unlock()
		if old {
			delete(p.byID, id)
			if p.byKey[q.key] == q {
				delete(p.byKey, q.key)
			}
		}
	}
}

func (p *pendingCalls) cancelAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for q := range p.all {
		q.cancel()
	}
}
