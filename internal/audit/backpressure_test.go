package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// holdHead takes the store's audit write lock from outside, as another
// writer (a CLI command, a second gateway node) holding a long transaction
// would: SQLite's write lock (BEGIN IMMEDIATE), PostgreSQL's head row. The
// log's commits wait behind it until release is called; nothing fails.
func holdHead(t *testing.T, spec, dir string) (release func()) {
	t.Helper()
	db, _ := testenv.RawDB(t, spec, dir)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lock, unlock := "BEGIN IMMEDIATE", "COMMIT"
	if strings.HasPrefix(spec, "postgres") {
		lock = "BEGIN; SELECT size FROM audit_head WHERE id = 1 FOR UPDATE"
	}
	if _, err := conn.ExecContext(ctx, lock); err != nil {
		t.Fatalf("hold the audit head: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(ctx, unlock); err != nil {
				t.Errorf("release the audit head: %v", err)
			}
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// TestFullQueueSlowsProducers is issue 12's burst at the audit log's scale:
// many producers enqueue far more events than the queue holds while the
// store is slow (its write lock held elsewhere). On main, Enqueue refused
// every event past the queue's capacity with "audit log queue full", and
// the gateway turned that into 57P03 for sessions and statements. Now the
// producers wait for room, no event is refused or lost, and the log
// verifies.
func TestFullQueueSlowsProducers(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			var waited, refused atomic.Int64
			f := open(t, kind, audit.Options{QueueSize: 8, MaxBatch: 8, OnWait: func(_ time.Duration, err error) {
				waited.Add(1)
				if err != nil {
					refused.Add(1)
				}
			}})
			appendN(t, f.log, 1) // the tables and the head row exist
			release := holdHead(t, f.spec, f.dir)
			time.AfterFunc(300*time.Millisecond, release)

			const producers, each = 32, 8
			var wg sync.WaitGroup
			errs := make(chan error, producers*each)
			pending := make(chan *audit.Pending, producers*each)
			for g := range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						p, err := f.log.Enqueue(context.Background(), audit.Event{Kind: audit.KindDecision, Action: "sql:select", Decision: "allow", Reason: fmt.Sprintf("p%d-%d", g, i)})
						if err != nil {
							errs <- err
							continue
						}
						pending <- p
					}
				}()
			}
			wg.Wait()
			close(errs)
			close(pending)
			for err := range errs {
				t.Fatalf("a producer was refused on a working store: %v", err)
			}
			for p := range pending {
				if _, err := p.Wait(context.Background()); err != nil {
					t.Fatalf("event not made durable: %v", err)
				}
			}
			if waited.Load() == 0 || refused.Load() != 0 {
				t.Fatalf("waits = %d, refused = %d: want producers to have waited for room and none refused", waited.Load(), refused.Load())
			}
			if err := f.log.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			rep, err := f.verify(t)
			if err != nil || rep.Events != 1+producers*each {
				t.Fatalf("verify: %+v, %v; want %d events", rep, err, 1+producers*each)
			}
		})
	}
}

// TestFailingStoreIsNamed: when the store itself fails, a producer finding
// the queue full and a caller waiting for durability are refused at once
// with ErrStoreFailing, which says so, rather than after MaxWait or never
// (on main, Append with no deadline waited forever).
func TestFailingStoreIsNamed(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			f := open(t, kind, audit.Options{QueueSize: 4, MaxBatch: 4, MaxWait: time.Minute})
			appendN(t, f.log, 1)
			f.st.Close() // every commit fails from now on

			start := time.Now()
			_, err := f.log.Append(context.Background(), audit.Event{Kind: audit.KindDecision, Reason: "after the store failed"})
			if !errors.Is(err, audit.ErrStoreFailing) || !strings.Contains(err.Error(), "audit store is failing") {
				t.Fatalf("Append on a failing store: %v, want ErrStoreFailing", err)
			}
			var full error
			for i := 0; i < 16 && full == nil; i++ {
				_, full = f.log.Enqueue(context.Background(), audit.Event{Kind: audit.KindDecision, Reason: fmt.Sprintf("fill %d", i)})
			}
			if !errors.Is(full, audit.ErrStoreFailing) {
				t.Fatalf("Enqueue on a full queue over a failing store: %v, want ErrStoreFailing", full)
			}
			if took := time.Since(start); took > 20*time.Second {
				t.Fatalf("refusals took %s: they must not wait out MaxWait", took)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			f.log.Close(ctx) // gives up on the queued events
		})
	}
}

// TestFullQueueHonoursContext: a producer waiting for room stops when its
// caller's context ends (the client went away), and says why.
func TestFullQueueHonoursContext(t *testing.T) {
	kind := testenv.Stores()[0]
	f := open(t, kind, audit.Options{QueueSize: 2, MaxBatch: 2})
	appendN(t, f.log, 1)
	release := holdHead(t, f.spec, f.dir)
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var err error
	for i := 0; i < 8 && err == nil; i++ {
		_, err = f.log.Enqueue(ctx, audit.Event{Kind: audit.KindDecision, Reason: fmt.Sprintf("e%d", i)})
	}
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, audit.ErrStoreFailing) {
		t.Fatalf("Enqueue with an ended context: %v, want the context's error", err)
	}
	release()
}
