package identity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// TestRecheck: the per-request check of an open session's token refuses it
// once it expires (exp plus skew) or is revoked, locally or by another
// process through the store, and the generation moves only when the
// revocation set gains an entry.
func TestRecheck(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	gw := e.service(identity.Config{ClockSkew: 5 * time.Second})
	cli := e.service(identity.Config{ClockSkew: 5 * time.Second})

	gen0 := gw.RevocationGeneration()
	tok, c, err := gw.Issue(ctx, identity.IssueRequest{Subject: "bot", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	gen, err := gw.Recheck(c.ID, c.ExpiresAt, gen0)
	if err != nil || gen != gen0 {
		t.Fatalf("fresh token: gen %d err %v, want %d nil", gen, err, gen0)
	}

	// Another token's revoke moves the generation; this one still holds,
	// and the new generation is returned to remember.
	_, other, _ := gw.Issue(ctx, identity.IssueRequest{Subject: "other", TTL: time.Minute})
	changed := gw.RevocationChanged()
	if err := gw.Revoke(ctx, other.ID, other.ExpiresAt, "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("RevocationChanged not closed by a local revoke")
	}
	if gen, err = gw.Recheck(c.ID, c.ExpiresAt, gen); err != nil || gen != gen0+1 {
		t.Fatalf("after another token's revoke: gen %d err %v, want %d nil", gen, err, gen0+1)
	}

	// A refresh that brings nothing new neither moves the generation nor
	// wakes watchers.
	changed = gw.RevocationChanged()
	if err := gw.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
		t.Fatal("a refresh with nothing new woke the watchers")
	default:
	}
	if g := gw.RevocationGeneration(); g != gen {
		t.Fatalf("generation %d after an empty refresh, want %d", g, gen)
	}

	// The CLI revokes this token through the store: the gateway sees it at
	// its next refresh, not before.
	if err := cli.Revoke(ctx, c.ID, c.ExpiresAt, "operator"); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Recheck(c.ID, c.ExpiresAt, gen); err != nil {
		t.Fatalf("before the refresh: %v", err)
	}
	if err := gw.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("RevocationChanged not closed by a refresh that brought a revoke")
	}
	if _, err := gw.Recheck(c.ID, c.ExpiresAt, gen); !errors.Is(err, identity.ErrRevoked) {
		t.Fatalf("after the refresh: %v, want ErrRevoked", err)
	}

	// Expiry: refused from exp plus the skew, by the service's clock.
	_, live, _ := gw.Issue(ctx, identity.IssueRequest{Subject: "bot", TTL: time.Minute})
	g := gw.RevocationGeneration()
	if d := gw.ValidFor(live.ExpiresAt); d <= time.Minute || d > time.Minute+5*time.Second {
		t.Fatalf("ValidFor = %v, want just over a minute plus 5s skew", d)
	}
	e.clock.Advance(time.Minute + 4*time.Second)
	if _, err := gw.Recheck(live.ID, live.ExpiresAt, g); err != nil {
		t.Fatalf("within the skew: %v", err)
	}
	e.clock.Advance(time.Second)
	if _, err := gw.Recheck(live.ID, live.ExpiresAt, g); !errors.Is(err, identity.ErrExpired) {
		t.Fatalf("at exp + skew: %v, want ErrExpired", err)
	}
	if d := gw.ValidFor(live.ExpiresAt); d > 0 {
		t.Fatalf("ValidFor after expiry = %v, want <= 0", d)
	}
}

// TestRecheckCostsNoVerification: on an unchanged generation Recheck
// allocates nothing (Verify decodes JSON and checks a signature, and
// allocates), so the per-statement check stays off the crypto path.
func TestRecheckCostsNoVerification(t *testing.T) {
	e := newEnv(t)
	s := e.service(identity.Config{})
	_, c, _ := s.Issue(context.Background(), agentReq)
	gen := s.RevocationGeneration()
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := s.Recheck(c.ID, c.ExpiresAt, gen); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Recheck allocates %v times per call, want 0", n)
	}
}
