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
	done   chan struct{}
	wake   chan struct{} // signalled when the first record of a batch arrives

	mu      sync.Mutex
	batch   store.RecBatch // gathered since the last write
	queued  int
	dropped int64
	closed  bool
}

// maxQueued bounds the records waiting for a write.
const maxQueued = 50000

// New starts a recorder writing to st.
func New(st store.Store, logger *slog.Logger) *Recorder {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{st: st, logger: logger, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go r.run()
	return r
}

// SessionStarted records a new session.
func (r *Recorder) SessionStarted(s store.RecSession) {
	r.add(func(b *store.RecBatch) { b.Sessions = append(b.Sessions, s) })
}

// SessionEnded records the end of a session.
func (r *Recorder) SessionEnded(id string, at time.Time, reason string) {
	r.add(func(b *store.RecBatch) { b.Ends = append(b.Ends, store.RecEnd{ID: id, End: at, Reason: reason}) })
}

// Statement records one statement.
func (r *Recorder) Statement(s store.RecStatement) {
	r.add(func(b *store.RecBatch) { b.Statements = append(b.Statements, s) })
}

// Dropped is the number of records dropped because the queue was full.
func (r *Recorder) Dropped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// add appends to the current batch under the lock; only the first record
// of a batch wakes the writer, so a busy gateway pays no goroutine wake-up
// per statement.
func (r *Recorder) add(f func(*store.RecBatch)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.queued >= maxQueued {
		r.dropped++
		return
	}
	f(&r.batch)
	r.queued++
	if r.queued == 1 {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// Close writes what is queued and stops.
func (r *Recorder) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.wake)
	}
	r.mu.Unlock()
	<-r.done
}

func (r *Recorder) run() {
	defer close(r.done)
	for {
		_, open := <-r.wake
		if open {
			// Linger so a busy gateway writes a few large transactions a
			// second rather than one per statement; recordings are not on
			// any client's critical path.
			time.Sleep(lingerFor)
		}
		r.mu.Lock()
		b := r.batch
		r.batch, r.queued = store.RecBatch{}, 0
		r.mu.Unlock()
		if len(b.Sessions)+len(b.Ends)+len(b.Statements) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := r.st.PutRecordings(ctx, b); err != nil {
				r.logger.Error("recording write failed", "statements", len(b.Statements), "err", err)
			}
			cancel()
		}
		if !open {
			return
		}
	}
}
