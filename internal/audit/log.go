package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// ErrClosed is returned for events submitted after Close.
var ErrClosed = errors.New("audit log closed")

// ErrStoreFailing is wrapped when the store cannot take events: its last
// commit failed and is being retried, or nothing was made durable within
// MaxWait. It is the only reason, besides ErrClosed and the caller's own
// context, that Enqueue and Append refuse an event: a full queue on a
// working store slows callers down instead (backpressure).
var ErrStoreFailing = errors.New("the audit store is failing")

// Options configure a Log. Zero values take the documented defaults.
type Options struct {
	Store  store.Store
	Signer note.Signer
	// Verifier is Signer's public key. The log checks with it, before
	// signing, that the stored tree extends the last checkpoint it trusts,
	// and refuses to sign otherwise (see Err).
	Verifier note.Verifier
	// CheckpointEvery signs a checkpoint after this many new events (1000).
	CheckpointEvery int64
	// CheckpointInterval signs a checkpoint at least this often while events
	// arrive (10s).
	CheckpointInterval time.Duration
	// UnsignedGrace is how long an event may stay outside every signed
	// checkpoint (CheckpointInterval + 1m). A running log signs well within
	// it; a log opened over unsigned events that span more than this refuses
	// to sign them, as Verify fails them.
	UnsignedGrace time.Duration
	// CheckpointFile, if set, is an append-only file outside the store that
	// signed checkpoints are also written to: at most once per
	// CheckpointInterval, and at Close.
	CheckpointFile string
	// WitnessURL, if set, is sent each checkpoint written to the file, as a
	// POST of the signed note. A failure is logged and retried with the
	// newest checkpoint; it never holds up appends.
	WitnessURL string
	// HTTPClient posts to the witness (default http.Client; each post is
	// bounded to 10s).
	HTTPClient *http.Client
	// MaxBatch bounds the events committed in one transaction (4096).
	MaxBatch int
	// Linger, when positive, lets the writer gather events for up to this
	// long before a commit. With group durability nobody waits on a commit,
	// so a few milliseconds turn hundreds of small commits a second into a
	// few large ones; sync callers would wait that much longer.
	Linger time.Duration
	// QueueSize bounds events waiting to be committed (65536). When it is
	// full, Enqueue waits for room.
	QueueSize int
	// MaxWait bounds how long Enqueue waits for room in a full queue and
	// Append waits for durability (30s). A working store commits a full
	// queue in a second or two, so a wait that long means the store is
	// stalled, and the event is refused with ErrStoreFailing.
	MaxWait time.Duration
	Clock   func() time.Time
	Logger  *slog.Logger
	// OnCommit, if set, observes each group commit (for metrics): the
	// events, how long the store took, and how long the oldest event
	// waited from Enqueue until it was durable.
	OnCommit func(events int, took, latency time.Duration, err error)
	// OnWait, if set, observes each Enqueue that found the queue full, with
	// how long it waited and why it stopped (nil once the event is in).
	OnWait func(waited time.Duration, err error)
	// OnCheckpoint, if set, observes each checkpoint attempt: "signed",
	// "refused" (the log refuses to sign, see Err) or "error" (the store
	// failed; retried).
	OnCheckpoint func(result string)
	// OnExternal, if set, observes each write of a checkpoint outside the
	// store, to target "file" or "witness".
	OnExternal func(target string, err error)
}

// DefaultUnsignedGrace is UnsignedGrace for a checkpoint interval: one
// interval for the checkpoint to come due, and a minute of slack for
// commit and signing time and clock skew between hosts.
func DefaultUnsignedGrace(interval time.Duration) time.Duration { return interval + time.Minute }

// Pending is an event accepted into the log's order but perhaps not yet
// durable.
type Pending struct {
	ev   Event
	done chan struct{}
	err  error
	// fail is the store failure current when the event was queued: Wait
	// gives up when it happens rather than wait out a store that is down.
	fail *failure
	at   time.Time // when it was queued
}

// Wait blocks until the event is durable, ctx ends, or the store fails
// (an error wrapping ErrStoreFailing).
func (p *Pending) Wait(ctx context.Context) (Event, error) {
	select {
	case <-p.done:
		return p.ev, p.err
	case <-ctx.Done():
		return p.ev, fmt.Errorf("audit: waiting for durable append: %w", ctx.Err())
	case <-p.fail.ch:
		select {
		case <-p.done: // it landed after all
			return p.ev, p.err
		default:
		}
		return p.ev, fmt.Errorf("audit: waiting for durable append: %w", p.fail.err)
	}
}

// failure is one episode of store failure: ch is closed, with err set,
// when it begins. A healthy log holds an open one for the next episode.
type failure struct {
	ch  chan struct{}
	err error
}

// Log appends events through group commit: one writer goroutine takes
// everything queued while the previous commit was in flight and commits it in
// one transaction (one fsync), which is how a single node sustains tens of
// thousands of durable appends a second. Checkpoints are signed by a second
// goroutine and copied outside the store by a third, so neither holds up a
// commit.
type Log struct {
	opts  Options
	queue chan *Pending
	stop  chan struct{}
	abort chan struct{} // closed when Close gives up waiting
	// closing is closed when Close begins, before it takes mu: producers
	// waiting for room give up (ErrClosed) rather than hold Close off.
	closing     chan struct{}
	closingOnce sync.Once
	done        chan struct{}

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool

	// fail is the current store failure: open while commits succeed,
	// closed (with its error) from a failed commit until the next one
	// succeeds. Only the writer replaces it.
	fail atomic.Pointer[failure]

	// writer state, owned by the run goroutine
	rng     *compact.Range
	last    []byte // leaf hash of the last leaf in rng
	size    int64  // events in the store as far as the writer knows
	reqSize int64  // size of the last checkpoint asked of the signer
	reqTime time.Time

	// heads carries checkpoints to sign to the signer goroutine; it holds
	// one, and a newer head replaces one not yet taken.
	heads      chan head
	signerDone chan struct{}
	signed     atomic.Int64 // size of the newest checkpoint trusted or signed
	trust      trusted      // owned by the signer goroutine once it runs

	ext *exporter // nil without a checkpoint file or witness

	refusedMu sync.Mutex
	refused   error
	// persistRefusal is set once Open has checked the store: a refusal
	// found after that is written to the checkpoint file, because no later
	// node could find it again by itself.
	persistRefusal bool
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Open starts a log over opts.Store, rebuilding the in-memory tree state
// from the stored leaves and checking it against the newest checkpoints it
// can verify, in the store and in the checkpoint file. A log that fails
// those checks still opens and appends, but refuses to sign (see Err).
func Open(ctx context.Context, opts Options) (*Log, error) {
	if opts.Store == nil || opts.Signer == nil || opts.Verifier == nil {
		return nil, errors.New("audit: Open needs a store, a signer and its verifier")
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 1000
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 10 * time.Second
	}
	if opts.UnsignedGrace <= 0 {
		opts.UnsignedGrace = DefaultUnsignedGrace(opts.CheckpointInterval)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 4096
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 65536
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 30 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		opts:       opts,
		queue:      make(chan *Pending, opts.QueueSize),
		stop:       make(chan struct{}),
		abort:      make(chan struct{}),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
		rng:        rangeFactory.NewEmptyRange(0),
		heads:      make(chan head, 1),
		signerDone: make(chan struct{}),
	}
	l.fail.Store(&failure{ch: make(chan struct{})})
	if err := l.openTrust(ctx); err != nil {
		return nil, err
	}
	l.persistRefusal = true
	l.size = int64(l.rng.End())
	l.reqSize, l.reqTime = l.trust.size(), l.trust.time
	if l.reqTime.IsZero() {
		l.reqTime = opts.Clock()
	}
	l.signed.Store(l.trust.size())
	if opts.CheckpointFile != "" || opts.WitnessURL != "" {
		l.ext = newExporter(opts)
	}
	go l.signer()
	go l.run()
	return l, nil
}

// Err says why the log refuses to sign checkpoints, as a *TamperError, or
// is nil while it signs. Readiness and `audit verify` report it.
func (l *Log) Err() error {
	l.refusedMu.Lock()
	defer l.refusedMu.Unlock()
	return l.refused
}

// refuse stops all further signing, for good: the store no longer holds the
// log this node trusts, and a signature now would vouch for a forgery.
func (l *Log) refuse(err error) {
	l.refusedMu.Lock()
	first := l.refused == nil
	if first {
		l.refused = err
	}
	persist := first && l.persistRefusal
	l.refusedMu.Unlock()
	if !first {
		return
	}
	l.opts.Logger.Error("AUDIT LOG TAMPERING DETECTED: this node refuses to sign audit checkpoints from now on; run `gatehouse audit verify`", "err", err)
	l.observeCheckpoint("refused")
	if persist && l.ext != nil {
		msg, serr := SignRefusal(l.opts.Signer, err.Error(), l.opts.Clock())
		if serr != nil {
			l.opts.Logger.Error("audit refusal notice", "err", serr)
			return
		}
		l.ext.refuse(msg)
	}
}

func (l *Log) observeCheckpoint(result string) {
	if l.opts.OnCheckpoint != nil {
		l.opts.OnCheckpoint(result)
	}
}

// catchUp extends the in-memory compact range with leaves appended since it
// was last extended (by this node or, with a shared store, another one),
// calling observe, if set, after each. Each must sit at the next index and
// link to the leaf before it, or the log is not what this node holds: that
// is a *TamperError.
func (l *Log) catchUp(ctx context.Context, observe func(store.AuditRecord)) error {
	var hexBuf [64]byte
	return l.opts.Store.ScanAudit(ctx, int64(l.rng.End()), func(r store.AuditRecord) error {
		end := int64(l.rng.End())
		if r.Index != end {
			return &TamperError{Index: end, What: fmt.Sprintf("event missing from the store (next stored event has index %d)", r.Index)}
		}
		index, link, ok := linkOf(r.Body)
		if !ok {
			return &TamperError{Index: end, What: "event body is not a valid event"}
		}
		if index != end || !linksTo(link, l.last, &hexBuf) {
			return &TamperError{Index: end, What: "stored event does not link to the event before it"}
		}
		if err := l.rng.Append(r.LeafHash, nil); err != nil {
			return fmt.Errorf("audit: extend tree: %w", err)
		}
		l.last = r.LeafHash
		if observe != nil {
			observe(r)
		}
		return nil
	})
}

// Enqueue places e in the log's order; the event becomes durable with the
// next group commit. Use Append to wait for durability. It returns at once
// while the queue has room. When the queue is full it waits for room
// (backpressure: a burst slows its producers to the store's pace) until
// ctx ends or MaxWait passes; it refuses the event only when the store is
// failing (ErrStoreFailing) or the log is closed.
func (l *Log) Enqueue(ctx context.Context, e Event) (*Pending, error) {
	now := l.opts.Clock()
	if e.ID == "" {
		e.ID = NewID(now)
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	p := &Pending{ev: e, done: make(chan struct{}), fail: l.fail.Load(), at: now}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	select {
	case l.queue <- p:
		return p, nil
	default:
		return l.waitForRoom(ctx, p)
	}
}

// waitForRoom is Enqueue's slow path, with the queue full. It holds mu for
// reading, so Close signals closing first and a waiter gives up then; the
// writer keeps committing meanwhile, so room appears unless the store is
// stuck.
func (l *Log) waitForRoom(ctx context.Context, p *Pending) (*Pending, error) {
	start := time.Now()
	t := time.NewTimer(l.opts.MaxWait)
	defer t.Stop()
	var err error
	select {
	case l.queue <- p:
	case <-p.fail.ch:
		err = p.fail.err
	case <-ctx.Done():
		err = fmt.Errorf("audit: waiting for room in the queue: %w", ctx.Err())
	case <-l.closing:
		err = ErrClosed
	case <-t.C:
		err = fmt.Errorf("%w: the queue of %d events has had no room for %s", ErrStoreFailing, cap(l.queue), l.opts.MaxWait)
	}
	if l.opts.OnWait != nil {
		l.opts.OnWait(time.Since(start), err)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Append adds e and waits until it is durable in the store, for at most
// MaxWait.
func (l *Log) Append(ctx context.Context, e Event) (Event, error) {
	p, err := l.Enqueue(ctx, e)
	if err != nil {
		return e, err
	}
	wctx, cancel := context.WithTimeout(ctx, l.opts.MaxWait)
	defer cancel()
	ev, err := p.Wait(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return ev, fmt.Errorf("%w: the event was not made durable within %s", ErrStoreFailing, l.opts.MaxWait)
	}
	return ev, err
}

// QueueDepth is the number of events waiting to be committed.
func (l *Log) QueueDepth() int { return len(l.queue) }

// setFailing records that the store failed a commit: waiters for
// durability and for room stop waiting and report err.
func (l *Log) setFailing(err error) {
	f := l.fail.Load()
	select {
	case <-f.ch: // already failing
		return
	default:
	}
	f.err = fmt.Errorf("%w: %w", ErrStoreFailing, err)
	close(f.ch)
}

// setHealthy records a successful commit, ending a failure episode.
func (l *Log) setHealthy() {
	select {
	case <-l.fail.Load().ch:
		l.fail.Store(&failure{ch: make(chan struct{})})
	default:
	}
}

// Close commits everything queued, signs a final checkpoint and stops the
// writer.
func (l *Log) Close(ctx context.Context) error {
	l.closingOnce.Do(func() { close(l.closing) })
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
			for !l.aborted() {
				batch = l.drain(batch[:0])
				if len(batch) == 0 {
					l.maybeCheckpoint(true)
					break
				}
				l.commit(batch)
			}
			close(l.heads)
			<-l.signerDone
			if l.ext != nil {
				l.ext.close(l.aborted())
			}
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
			err = l.follow(context.Background(), nil)
		} else {
			err = l.commitOnce(batch)
		}
		if l.opts.OnCommit != nil {
			l.opts.OnCommit(len(batch), time.Since(start), l.opts.Clock().Sub(batch[0].at), err)
		}
		if err == nil {
			l.setHealthy()
			for _, p := range batch {
				close(p.done)
			}
			return
		}
		l.setFailing(err)
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
	var headSize int64
	var headLast []byte
	err := l.opts.Store.AppendAudit(ctx, func(size int64, last []byte) ([]store.AuditRecord, error) {
		headSize, headLast = size, last
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
	l.size = headSize + int64(len(batch))
	if l.Err() != nil {
		return nil // the tree is no longer kept once the log refuses to sign
	}
	// The head the batch was appended to must be the tree this node holds,
	// or a newer one another node extended it to.
	end := int64(l.rng.End())
	switch {
	case headSize < end:
		l.refuse(&TamperError{Index: headSize, What: fmt.Sprintf("the store's log head went back from %d to %d events: events were removed", end, headSize)})
		return nil
	case headSize == end && !bytes.Equal(headLast, l.last):
		l.refuse(&TamperError{Index: max(end-1, 0), What: "the store's log head names a last event that is not the one this node holds: the log was rewritten"})
		return nil
	case headSize > end:
		// Another node appended before us; bring the tree up to date from
		// the store rather than trusting our own leaves alone.
		return l.follow(ctx, nil)
	}
	for _, h := range leaves {
		if err := l.rng.Append(h, nil); err != nil {
			return fmt.Errorf("audit: extend tree: %w", err)
		}
	}
	l.last = leaves[len(leaves)-1]
	return nil
}

// follow runs catchUp after a commit. A store that no longer holds what this
// node holds makes the log refuse to sign; the events just committed are
// durable all the same, so that is not a commit error.
func (l *Log) follow(ctx context.Context, observe func(store.AuditRecord)) error {
	err := l.catchUp(ctx, observe)
	if IsTampered(err) {
		l.refuse(err)
		return nil
	}
	return err
}

// maybeCheckpoint asks the signer for a checkpoint when CheckpointEvery
// events have arrived since the last one was asked for, or when
// CheckpointInterval has passed, or when force is set (the ticker, Close)
// and any event is unsigned.
func (l *Log) maybeCheckpoint(force bool) {
	if l.size == l.signed.Load() {
		return
	}
	now := l.opts.Clock()
	if !force && (l.size == l.reqSize || l.size-l.reqSize < l.opts.CheckpointEvery && now.Sub(l.reqTime) < l.opts.CheckpointInterval) {
		return
	}
	h := head{size: l.size, at: now}
	if l.Err() == nil {
		root, err := l.rng.GetRootHash(nil)
		if err != nil {
			l.opts.Logger.Error("audit checkpoint: tree root", "err", err)
			return
		}
		h.size, h.root = int64(l.rng.End()), root
	}
	l.reqSize, l.reqTime = h.size, now
	sendNewest(l.heads, h)
}

// aborted reports whether Close gave up waiting.
func (l *Log) aborted() bool {
	select {
	case <-l.abort:
		return true
	default:
		return false
	}
}

// sendNewest sends v on ch, which has room for one value, replacing a value
// not yet taken: a newer checkpoint covers everything an older one does.
// Only one goroutine sends on ch.
func sendNewest[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}
