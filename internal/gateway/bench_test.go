package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// BenchmarkAuthorize is one statement's decision on an open session, as
// the PostgreSQL engine asks for it: the verdict cached (the same
// statement again) or decided afresh. It includes the recheck of the
// session's token (Check) and the audit enqueue.
func BenchmarkAuthorize(b *testing.B) {
	p := newPipeline(b, identity.Config{})
	tok, _ := p.token(b, "bot", time.Hour)
	ctx := context.Background()
	s, err := p.Authenticate(ctx, tok, "pg", "postgres", "bench")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		key  any
	}{{"cached", new(int)}, {"uncached", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			r := selectReq(bc.key)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				v, err := p.Authorize(ctx, s, r)
				if err != nil || !v.Allow {
					b.Fatalf("%+v %v", v, err)
				}
				if n++; n%(1<<16) == 0 {
					// Let the audit writer catch up, off the clock: the log
					// is ordered, so an appended event is durable last.
					b.StopTimer()
					if _, err := p.Audit.Append(ctx, audit.Event{Kind: "bench.drain"}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkCheck is the recheck alone, on the usual path: no revoke since
// the session last looked.
func BenchmarkCheck(b *testing.B) {
	p := newPipeline(b, identity.Config{})
	tok, _ := p.token(b, "bot", time.Hour)
	s, err := p.Authenticate(context.Background(), tok, "pg", "postgres", "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Check(s); err != nil {
			b.Fatal(err)
		}
	}
}
