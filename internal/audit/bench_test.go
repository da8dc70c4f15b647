package audit_test

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// BenchmarkAppendDurable measures durable appends (each Append returns only
// once its event is committed with fsync) from many concurrent callers, as
// a busy gateway produces them; group commit is what makes this fast.
func BenchmarkAppendDurable(b *testing.B) {
	for _, kind := range testenv.Stores() {
		b.Run(kind.Name, func(b *testing.B) {
			spec, dir := kind.Spec(b)
			st := testenv.OpenStore(b, spec, dir)
			signer, verifier, err := audit.LoadOrCreateKeys(dir + "/keys")
			if err != nil {
				b.Fatal(err)
			}
			// As the gateway runs by default: checkpoints also go to a file.
			l, err := audit.Open(context.Background(), audit.Options{Store: st, Signer: signer, Verifier: verifier, CheckpointFile: dir + "/audit-checkpoints.log"})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close(context.Background())
			ev := audit.Event{Kind: audit.KindDecision, Principal: `Agent::"report-bot"`, OnBehalfOf: "alice@example.com",
				Action: "sql:select", Resource: `Table::"pg/public.users"`, Connection: "pg", Decision: "allow",
				Policies: []string{"scope-read"}, Details: map[string]string{"fingerprint": "a1b2c3d4e5f60718"}}
			b.SetParallelism(64) // 64 × GOMAXPROCS callers, like many sessions
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(context.Background(), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

var verifyN = flag.Int("verify-events", 1_000_000, "events for BenchmarkVerify")

// BenchmarkVerify measures `audit verify` over a log of -verify-events
// events (default 1,000,000) in SQLite. Filling the log is not timed.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	st := testenv.OpenStore(b, "sqlite", dir)
	signer, verifier, err := audit.LoadOrCreateKeys(dir + "/keys")
	if err != nil {
		b.Fatal(err)
	}
	l, err := audit.Open(context.Background(), audit.Options{Store: st, Signer: signer, Verifier: verifier, CheckpointEvery: 100000, MaxBatch: 8192, CheckpointFile: dir + "/audit-checkpoints.log"})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	per := *verifyN / 8
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				// A full queue makes Enqueue wait for the writer.
				if _, err := l.Enqueue(context.Background(), audit.Event{Kind: audit.KindDecision, Principal: `Agent::"a"`, Action: "sql:select", Decision: "allow", Reason: fmt.Sprintf("g%d-%d", g, i)}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		rep, err := audit.Verify(context.Background(), st, verifier, audit.VerifyOptions{CheckpointFiles: []string{dir + "/audit-checkpoints.log"}})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Events != int64(per*8) {
			b.Fatalf("verified %d events, want %d", rep.Events, per*8)
		}
	}
}

// BenchmarkEnqueue measures the group-durability hot path: a statement's
// event is queued in order and the statement goes on, the writer committing
// behind it. With the queue full, callers wait for room (backpressure), so
// this runs at the store's pace once the queue has filled; run it with
// -benchtime Nx, N below QueueSize, to measure the path with room.
func BenchmarkEnqueue(b *testing.B) {
	dir := b.TempDir()
	st := testenv.OpenStore(b, "sqlite", dir)
	signer, verifier, err := audit.LoadOrCreateKeys(dir + "/keys")
	if err != nil {
		b.Fatal(err)
	}
	l, err := audit.Open(context.Background(), audit.Options{Store: st, Signer: signer, Verifier: verifier, Linger: 5 * time.Millisecond, QueueSize: 1 << 20, CheckpointFile: dir + "/audit-checkpoints.log"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(context.Background())
	ev := audit.Event{Kind: audit.KindDecision, Principal: `Agent::"report-bot"`, Action: "sql:select", Connection: "pg", Decision: "allow"}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := l.Enqueue(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
