package identity_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// benchService has 1000 live revocations, so Verify's revocation check
// runs against a realistic set.
func benchService(b *testing.B) *identity.Service {
	b.Helper()
	st := newMemRevocations()
	s, err := identity.New(context.Background(), identity.Config{}, b.TempDir(), st, identity.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if err := s.Revoke(context.Background(), fmt.Sprintf("revoked-%d", i), time.Now().Add(time.Hour), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkVerify(b *testing.B) {
	s := benchService(b)
	ctx := context.Background()
	tok, _, err := s.Issue(ctx, agentReq)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	s := benchService(b)
	ctx := context.Background()
	tok, _, err := s.Issue(ctx, agentReq)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkIssue(b *testing.B) {
	s := benchService(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Issue(ctx, agentReq); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecheck is the per-statement check of an open session's token,
// against 1000 live revocations: on the usual path (no revoke since the
// last look) and when the generation has moved (one map lookup).
func BenchmarkRecheck(b *testing.B) {
	s := benchService(b)
	_, c, err := s.Issue(context.Background(), agentReq)
	if err != nil {
		b.Fatal(err)
	}
	gen := s.RevocationGeneration()
	b.Run("unchanged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Recheck(c.ID, c.ExpiresAt, gen); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generation moved", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Recheck(c.ID, c.ExpiresAt, gen-1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
