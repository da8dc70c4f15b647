package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// ErrClosed is returned for events submitted after Close.
var ErrClosed = errors.New("audit log closed")

// ErrBackpressure is returned when the queue of events waiting to be made
// durable is full: callers fail closed rather than run unlogged.
var ErrBackpressure = errors.New("audit log queue full")

// Options configure a Log. Zero values take the documented defaults.
type Options struct {
	Store  store.Store
	Signer note.Signer
	// CheckpointEvery signs a checkpoint after this many new events (1000).
	CheckpointEvery int64
	// CheckpointInterval signs a checkpoint at least this often while events
	// arrive (10s).
	CheckpointInterval time.Duration
	// MaxBatch bounds the events committed in one transaction (4096).
	MaxBatch int
	// Linger, when positive, lets the writer gather events for up to this
	// long before a commit. With group durability nobody waits on a commit,
	// so a few milliseconds turn hundreds of small commits a second into a
	// few large ones; sync callers would wait that much longer.
	Linger time.Duration
	// QueueSize bounds events waiting to be committed (65536).
	QueueSize int
	Clock     func() time.Time
	Logger    *slog.Logger
	// OnCommit, if set, observes each group commit (for metrics).
	OnCommit func(events int, took time.Duration, err error)
}

// Pending is an event accepted into the log's order but perhaps not yet
// durable.
type Pending struct {
	ev   Event
	done chan struct{}
	err  error
}

// Wait blocks until the event is durable or ctx ends.
func (p *Pending) Wait(ctx context.Context) (Event, error) {
	select {
	case <-p.done:
		return p.ev, p.err
	case <-ctx.Done():
		return p.ev, fmt.Errorf("audit: waiting for durable append: %w", ctx.Err())
	}
}

// Log appends events through group commit: one writer goroutine takes
// everything queued while the previous commit was in flight and commits it in
// one transaction (one fsync), which is how a single node sustains tens of
// thousands of durable appends a second.
type Log struct {
	opts  Options
	queue chan *Pending
	stop  chan struct{}
	abort chan struct{} // closed when Close gives up waiting
	done  chan struct{}

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool

	// writer state, owned by the run goroutine
	rng         *compact.Range
	lastCPSize  int64
	lastCPTime  time.Time
	checkpoints int
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Open starts a log over opts.Store, rebuilding the in-memory tree state
// from the stored leaves.
func Open(ctx context.Context, opts Options) (*Log, error) {
	if opts.Store == nil || opts.Signer == nil {
		return nil, errors.New("audit: Open needs a store and a signer")
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 1000
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 10 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 4096
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 65536
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		opts:  opts,
		queue: make(chan *Pending, opts.QueueSize),
		stop:  make(chan struct{}),
		abort: make(chan struct{}),
		done:  make(chan struct{}),
		rng:   rangeFactory.NewEmptyRange(0),
	}
	if err := l.catchUp(ctx); err != nil {
		return nil, err
	}
	if cp, err := opts.Store.LatestCheckpoint(ctx); err == nil {
		l.lastCPSize, l.lastCPTime = cp.Size, cp.Time
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("audit open: %w", err)
	}
	go l.run()
	return l, nil
}

// catchUp extends the in-memory compact range with leaves appended since it
// was last extended (by this node or, with a shared store, another one).
func (l *Log) catchUp(ctx context.Context) error {
	return l.opts.Store.ScanAudit(ctx, int64(l.rng.End()), func(r store.AuditRecord) error {
		if r.Index != int64(l.rng.End()) {
			return fmt.Errorf("audit: stored log has a gap at index %d; run `gatehouse audit verify`", l.rng.End())
		}
		return l.rng.Append(r.LeafHash, nil)
	})
}

// Enqueue places e in the log's order and returns at once; the event becomes
// durable with the next group commit. Use Append to wait for durability.
func (l *Log) Enqueue(e Event) (*Pending, error) {
	now := l.opts.Clock()
	if e.ID == "" {
		e.ID = NewID(now)
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	p := &Pending{ev: e, done: make(chan struct{})}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	select {
	case l.queue <- p:
		return p, nil
	default:
		return nil, ErrBackpressure
	}
}

// Append adds e and waits until it is durable in the store.
func (l *Log) Append(ctx context.Context, e Event) (Event, error) {
	p, err := l.Enqueue(e)
	if err != nil {
		return e, err
	}
	return p.Wait(ctx)
}

// Close commits everything queued, signs a final checkpoint and stops the
// writer.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.stop)
	}
	l.mu.Unlock()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		// The store cannot take the queued events; stop retrying so the
		// process can exit, and say how many were lost.
		close(l.abort)
		<-l.done
		return fmt.Errorf("audit close: %d events not made durable: %w", len(l.queue), ctx.Err())
	}
}

func (l *Log) run() {
	defer close(l.done)
	ticker := time.NewTicker(l.opts.CheckpointInterval)
	defer ticker.Stop()
	batch := make([]*Pending, 0, l.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		case <-ticker.C:
			l.maybeCheckpoint(true)
			continue
		case <-l.stop:
			// Drain what was queued before Close, then sign the final state.
			for {
				batch = l.drain(batch[:0])
				if len(batch) == 0 {
					break
				}
				l.commit(batch)
				select {
				case <-l.abort:
					return
				default:
				}
			}
			l.maybeCheckpoint(true)
			return
		}
		if l.opts.Linger > 0 {
			batch = l.linger(batch)
		} else {
			batch = l.drain(batch)
		}
		l.commit(batch)
		l.maybeCheckpoint(false)
	}
}

// linger waits Linger and then takes what was queued meanwhile. It sleeps
// rather than receiving each event as it comes, so producers' sends land in
// the buffered queue without waking the writer once per event.
func (l *Log) linger(batch []*Pending) []*Pending {
	t := time.NewTimer(l.opts.Linger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.stop:
	}
	return l.drain(batch)
}

// drain takes whatever is queued without waiting, up to MaxBatch.
func (l *Log) drain(batch []*Pending) []*Pending {
	for len(batch) < l.opts.MaxBatch {
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// commit makes batch durable, retrying with backoff while the store fails so
// that no accepted event is dropped; waiters meanwhile see their context end
// and fail closed.
func (l *Log) commit(batch []*Pending) {
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		start := time.Now()
		var err error
		if attempt > 0 && l.landed(batch[0].ev.ID) {
			// The previous attempt committed but reported an error (a lost
			// connection after COMMIT); appending again would duplicate it.
			err = l.catchUp(context.Background())
		} else {
			err = l.commitOnce(batch)
		}
		if l.opts.OnCommit != nil {
			l.opts.OnCommit(len(batch), time.Since(start), err)
		}
		if err == nil {
			for _, p := range batch {
				close(p.done)
			}
			return
		}
		l.opts.Logger.Error("audit commit failed; retrying", "events", len(batch), "err", err)
		select {
		case <-time.After(backoff):
		case <-l.abort:
			for _, p := range batch {
				p.err = fmt.Errorf("audit: store unavailable at shutdown: %w", err)
				close(p.done)
			}
			return
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// landed reports whether the event with id is already stored.
func (l *Log) landed(id string) bool {
	_, err := l.opts.Store.AuditByID(context.Background(), id)
	return err == nil
}

func (l *Log) commitOnce(batch []*Pending) error {
	ctx := context.Background()
	var leaves [][]byte
	err := l.opts.Store.AppendAudit(ctx, func(size int64, last []byte) ([]store.AuditRecord, error) {
		recs := make([]store.AuditRecord, len(batch))
		leaves = leaves[:0]
		prev := last
		for i, p := range batch {
			p.ev.Index = size + int64(i)
			p.ev.Prev = hex.EncodeToString(prev)
			body, err := json.Marshal(p.ev)
			if err != nil {
				return nil, fmt.Errorf("audit: encode event: %w", err)
			}
			leaf := rfc6962.DefaultHasher.HashLeaf(body)
			recs[i] = store.AuditRecord{Index: p.ev.Index, ID: p.ev.ID, Time: p.ev.Time, Body: body, LeafHash: leaf}
			leaves = append(leaves, leaf)
			prev = leaf
		}
		return recs, nil
	})
	if err != nil {
		return err
	}
	// Another node may have appended before us; bring the tree up to date
	// from the store rather than trusting our own leaves alone.
	first := batch[0].ev.Index
	if int64(l.rng.End()) != first {
		return l.catchUp(ctx)
	}
	for _, h := range leaves {
		if err := l.rng.Append(h, nil); err != nil {
			return fmt.Errorf("audit: extend tree: %w", err)
		}
	}
	return nil
}

// maybeCheckpoint signs a checkpoint when CheckpointEvery events have
// arrived since the last one, or when force is set and any have.
func (l *Log) maybeCheckpoint(force bool) {
	size := int64(l.rng.End())
	if size == l.lastCPSize {
		return
	}
	now := l.opts.Clock()
	if !force && size-l.lastCPSize < l.opts.CheckpointEvery && now.Sub(l.lastCPTime) < l.opts.CheckpointInterval {
		return
	}
	if _, err := l.checkpoint(context.Background(), now); err != nil {
		l.opts.Logger.Error("audit checkpoint failed", "size", size, "err", err)
	}
}

func (l *Log) checkpoint(ctx context.Context, now time.Time) (store.Checkpoint, error) {
	size := int64(l.rng.End())
	root, err := l.rng.GetRootHash(nil)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	msg, err := SignCheckpoint(l.opts.Signer, size, root, now)
	if err != nil {
		return store.Checkpoint{}, err
	}
	cp := store.Checkpoint{Size: size, Root: root, Time: now.UTC(), Note: msg}
	if err := l.opts.Store.PutCheckpoint(ctx, cp); err != nil {
		return store.Checkpoint{}, err
	}
	l.lastCPSize, l.lastCPTime = size, now
	l.checkpoints++
	return cp, nil
}
