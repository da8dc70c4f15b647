package gateway_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// TestAuthorizeRechecksToken: every decision on an open session rechecks
// its token. A revoke (here, or by another process through the store) or
// the token's expiry refuses the next request with an error wrapping
// ErrAuth, audited once for the session; a session whose token still holds
// is unaffected.
func TestAuthorizeRechecksToken(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		ttl  time.Duration
		// end makes the token stop holding.
		end     func(t *testing.T, p *testPipeline, c identity.Claims)
		wantErr error
		kind    string
	}{
		{
			name: "revoked on this gateway",
			ttl:  time.Hour,
			end: func(t *testing.T, p *testPipeline, c identity.Claims) {
				if err := p.Identity.Revoke(ctx, c.ID, c.ExpiresAt, "test"); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: identity.ErrRevoked, kind: gateway.KindSessionRevoked,
		},
		{
			name: "revoked by the CLI through the store",
			ttl:  time.Hour,
			end: func(t *testing.T, p *testPipeline, c identity.Claims) {
				// The CLI is another process with its own identity service
				// on the same store; the gateway learns at its refresh.
				cli, err := identity.New(ctx, identity.Config{}, filepath.Join(t.TempDir(), "keys"), p.store, identity.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := cli.Revoke(ctx, c.ID, time.Time{}, "operator"); err != nil {
					t.Fatal(err)
				}
				if err := p.Identity.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: identity.ErrRevoked, kind: gateway.KindSessionRevoked,
		},
		{
			name: "expired",
			ttl:  time.Second,
			end: func(t *testing.T, p *testPipeline, c identity.Claims) {
				time.Sleep(time.Until(c.ExpiresAt.Add(time.Second))) // skew is 1s
			},
			wantErr: identity.ErrExpired, kind: gateway.KindSessionExpired,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(t, identity.Config{ClockSkew: time.Second})
			tok, c := p.token(t, "bot", tt.ttl)
			otherTok, _ := p.token(t, "bystander", time.Hour)
			s, err := p.Authenticate(ctx, tok, "pg", "postgres", "test")
			if err != nil {
				t.Fatal(err)
			}
			other, err := p.Authenticate(ctx, otherTok, "pg", "postgres", "test")
			if err != nil {
				t.Fatal(err)
			}
			key := new(int) // a cached verdict must not outlive the token either
			if v, err := p.Authorize(ctx, s, selectReq(key)); err != nil || !v.Allow {
				t.Fatalf("before: %+v %v", v, err)
			}

			tt.end(t, p, c)

			for i := range 2 {
				_, err := p.Authorize(ctx, s, selectReq(key))
				if !errors.Is(err, gateway.ErrAuth) || !errors.Is(err, tt.wantErr) {
					t.Fatalf("request %d after: %v, want ErrAuth and %v", i, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), tok) {
					t.Fatal("the error carries the token")
				}
			}
			if !errors.Is(s.Ended(), tt.wantErr) {
				t.Fatalf("Ended() = %v", s.Ended())
			}
			if v, err := p.Authorize(ctx, other, selectReq(key)); err != nil || !v.Allow {
				t.Fatalf("a session whose token holds: %+v %v", v, err)
			}
			p.Audit.Close(ctx) // make every event durable
			evs := p.events(t, tt.kind)
			if len(evs) != 1 {
				t.Fatalf("%d %s events, want exactly 1", len(evs), tt.kind)
			}
			if e := evs[0]; e.Session != s.ID || e.TokenID != c.ID || e.Principal != `Agent::"bot"` || e.Decision != "deny" || e.Reason == "" {
				t.Fatalf("event = %+v", e)
			}
		})
	}
}

// TestWatch: the watch ends its context as soon as the token is revoked or
// expires, with the reason as the cause, whether or not the session sends
// anything; a session whose token holds is left alone.
func TestWatch(t *testing.T) {
	ctx := context.Background()
	p := newPipeline(t, identity.Config{ClockSkew: time.Second})
	open := func(agent string, ttl time.Duration) (*gateway.Session, identity.Claims, context.Context) {
		tok, c := p.token(t, agent, ttl)
		s, err := p.Authenticate(ctx, tok, "pg", "postgres", "test")
		if err != nil {
			t.Fatal(err)
		}
		wctx, stop := p.Watch(ctx, s)
		t.Cleanup(stop)
		return s, c, wctx
	}
	_, revokedC, revoked := open("revoked", time.Hour)
	_, expiringC, expiring := open("expiring", 2*time.Second)
	_, _, holding := open("holding", time.Hour)

	start := time.Now()
	if err := p.Identity.Revoke(ctx, revokedC.ID, revokedC.ExpiresAt, "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-revoked.Done():
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("revoked session's watch ended after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end on revoke")
	}
	if cause := context.Cause(revoked); !errors.Is(cause, gateway.ErrAuth) || !errors.Is(cause, identity.ErrRevoked) {
		t.Fatalf("cause = %v", cause)
	}

	deadline := expiringC.ExpiresAt.Add(time.Second) // exp + skew
	select {
	case <-expiring.Done():
		if early := time.Until(deadline); early > 0 {
			t.Fatalf("ended %v before exp + skew", early)
		}
		if late := -time.Until(deadline); late > 500*time.Millisecond {
			t.Errorf("ended %v after exp + skew", late)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end at expiry")
	}
	if cause := context.Cause(expiring); !errors.Is(cause, identity.ErrExpired) {
		t.Fatalf("cause = %v", cause)
	}
	if err := holding.Err(); err != nil {
		t.Fatalf("a session whose token holds: %v", err)
	}

	// stop ends a watch without a token cause.
	s, _, _ := open("stopped", time.Hour)
	wctx, stop := p.Watch(ctx, s)
	stop()
	<-wctx.Done()
	if cause := context.Cause(wctx); errors.Is(cause, gateway.ErrAuth) || s.Ended() != nil {
		t.Fatalf("stopped watch: cause %v, ended %v", cause, s.Ended())
	}
}

// TestCheckAllocatesNothing: the per-request recheck verifies no signature
// and decodes nothing; on the usual path it does not allocate at all.
func TestCheckAllocatesNothing(t *testing.T) {
	p := newPipeline(t, identity.Config{})
	tok, _ := p.token(t, "bot", time.Hour)
	s, err := p.Authenticate(context.Background(), tok, "pg", "postgres", "test")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if err := p.Check(s); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Check allocates %v times, want 0", n)
	}
}
