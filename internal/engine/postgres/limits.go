package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
)

// Parsing is the one step whose memory grows with what the client sends:
// pg_query's tree of a 4.5 MB string of 500,000 `SELECT 1;` took about
// 1 GB. So a text is refused beyond a size and a statement count, and
// large texts are parsed a few at a time.
const (
	// DefaultMaxQueryBytes bounds the SQL text of one Query or Parse that
	// is analysed (postgres.max_query_bytes).
	DefaultMaxQueryBytes = 1 << 20
	// DefaultMaxStatements bounds the statements in one query string
	// (postgres.max_statements).
	DefaultMaxStatements = 10000
	// largeQuery is the size from which a text takes a parse slot.
	largeQuery = 64 << 10
	// parseSlots is how many large texts are parsed at once.
	parseSlots = 2
	// parseSlotWait bounds how long a large text waits for a slot.
	parseSlotWait = 10 * time.Second
)

// checkSize refuses a text beyond the analysis limits before it is parsed.
// Every statement ends at a semicolon or at the end of the text, so the
// number of semicolons plus one bounds the statement count from above.
func (s *session) checkSize(sql string) *denial {
	if n, max := len(sql), s.e.opts.MaxQueryBytes; n > max {
		return s.deny(codeProgramLimitExceeded, fmt.Sprintf("gatehouse: the statement text is %d bytes, over the analysis limit of %d (postgres.max_query_bytes); send large data as bind parameters or with COPY", n, max))
	}
	if n, max := strings.Count(sql, ";"), s.e.opts.MaxStatements; n >= max {
		return s.deny(codeProgramLimitExceeded, fmt.Sprintf("gatehouse: one query string may hold at most %d statements (postgres.max_statements)", max))
	}
	return nil
}

// analyze analyses sql, taking a parse slot for a large text; it returns a
// denial when the gateway is too busy with other large texts, or the text
// holds more statements than allowed.
func (s *session) analyze(ctx context.Context, sql string) (*sqlguard.Analysis, *denial) {
	if len(sql) >= largeQuery {
		// One large text at a time per principal, then one of the
		// gateway's few slots: an agent with many sessions queues behind
		// itself, not in front of everyone else.
		t := time.NewTimer(parseSlotWait)
		defer t.Stop()
		mine := s.e.principalSlot(s.gs.PrincipalUID())
		for _, slot := range []chan struct{}{mine, s.e.parseSlots} {
			select {
			case slot <- struct{}{}:
				defer func() { <-slot }()
			case <-t.C:
				return nil, s.deny(codeProgramLimitExceeded, "gatehouse: the gateway is busy analysing other large statements; retry")
			case <-ctx.Done():
				return nil, s.deny(codeAdminShutdown, "gatehouse: the session is ending")
			}
		}
	}
	a := s.e.opts.Analyzer.Analyze(sql)
	if errors.Is(a.Err, sqlguard.ErrTooComplex) {
		return a, s.deny("54001", "gatehouse: "+sqlguard.ErrTooComplex.Error())
	}
	if a.HasFlag(sqlguard.FlagLongName) && !s.serverUTF8 {
		return a, s.deny("42622", "gatehouse: "+sqlguard.ErrLongName.Error())
	}
	if len(a.Statements) > s.e.opts.MaxStatements {
		return a, s.deny(codeProgramLimitExceeded, fmt.Sprintf("gatehouse: one query string may hold at most %d statements (postgres.max_statements)", s.e.opts.MaxStatements))
	}
	return a, nil
}

// principalSlot is the semaphore of one large parse at a time for a
// principal. Entries are kept: there are as many as principals that ever
// sent a large text, which tokens bound.
func (e *Engine) principalSlot(uid string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.bigParse == nil {
		e.bigParse = map[string]chan struct{}{}
	}
	c, ok := e.bigParse[uid]
	if !ok {
		c = make(chan struct{}, 1)
		e.bigParse[uid] = c
	}
	return c
}
