package identity_test

import (
	"context"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic and
// must accept nothing it did not issue (forging Ed25519 is out of reach).
func FuzzVerify(f *testing.F) {
	clk := newClock()
	s, err := identity.New(context.Background(), identity.Config{}, f.TempDir(), newMemRevocations(), identity.Options{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	good, _, err := s.Issue(context.Background(), agentReq)
	if err != nil {
		f.Fatal(err)
	}
	p := splitDots(good)
	for _, seed := range []string{good, "", ".", "..", "a.b.c", p[0] + "." + p[1] + ".", p[0] + ".." + p[2], good + "=", "e30.e30.e30"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := s.Verify(context.Background(), raw)
		if err == nil && raw != good {
			t.Fatalf("accepted a token it did not issue: %q", raw)
		}
	})
}
