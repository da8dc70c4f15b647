package recording

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// lingerFor is how long the writer gathers records before a write.
const lingerFor = 200 * time.Millisecond

// Recorder batches session and statement records into the store. Its
// methods never block the data path: when the queue is full a record is
// dropped and counted (the audit log, not the recording, is the record of
// decisions, and it does not drop).
type Recorder struct {
	st     store.Store
	logger *slog.Logger
	ch     chan any
	done   chan struct{}

	mu      sync.Mutex
	dropped int64
	closed  bool
}

// New starts a recorder writing to st.
func New(st store.Store, logger *slog.Logger) *Recorder {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{st: st, logger: logger, ch: make(chan any, 16384), done: make(chan struct{})}
	go r.run()
	return r
}

// SessionStarted records a new session.
func (r *Recorder) SessionStarted(s store.RecSession) { r.send(s) }

// SessionEnded records the end of a session.
func (r *Recorder) SessionEnded(id string, at time.Time, reason string) {
	r.send(store.RecEnd{ID: id, End: at, Reason: reason})
}

// Statement records one statement.
func (r *Recorder) Statement(s store.RecStatement) { r.send(s) }

// Dropped is the number of records dropped because the queue was full.
func (r *Recorder) Dropped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

func (r *Recorder) send(v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	select {
	case r.ch <- v:
	default:
		r.dropped++
	}
}

// Close writes what is queued and stops.
func (r *Recorder) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.ch)
	}
	r.mu.Unlock()
	<-r.done
}

func (r *Recorder) run() {
	defer close(r.done)
	for {
		v, ok := <-r.ch
		if !ok {
			return
		}
		var b store.RecBatch
		add := func(v any) {
			switch x := v.(type) {
			case store.RecSession:
				b.Sessions = append(b.Sessions, x)
			case store.RecEnd:
				b.Ends = append(b.Ends, x)
			case store.RecStatement:
				b.Statements = append(b.Statements, x)
			}
		}
		add(v)
		// Linger briefly so a busy gateway writes a few large transactions
		// a second rather than one per statement; recordings are not on
		// any client's critical path.
		linger := time.NewTimer(lingerFor)
	drain:
		for len(b.Statements) < 5000 {
			select {
			case v, ok := <-r.ch:
				if !ok {
					break drain
				}
				add(v)
			case <-linger.C:
				break drain
			}
		}
		linger.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := r.st.PutRecordings(ctx, b); err != nil {
			r.logger.Error("recording write failed", "statements", len(b.Statements), "err", err)
		}
		cancel()
	}
}
