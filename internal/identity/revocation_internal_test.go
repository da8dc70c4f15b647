package identity

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestRevocationsMerge(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r := newRevocations()
	r.merge([]store.Revocation{{JTI: "a", ExpiresAt: t0.Add(time.Minute)}, {JTI: "b", ExpiresAt: t0.Add(time.Hour)}}, t0)
	tests := []struct {
		name string
		jti  string
		at   time.Time
		want bool
	}{
		{"revoked", "a", t0, true},
		{"other jti", "c", t0, false},
		{"revocation expired", "a", t0.Add(time.Minute), false},
		{"long one still there", "b", t0.Add(30 * time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.revoked(tt.jti, tt.at); got != tt.want {
				t.Errorf("revoked(%q) = %v, want %v", tt.jti, got, tt.want)
			}
		})
	}

	// A refresh that read the store before a local revoke landed must not
	// drop it: merge only adds.
	r.merge([]store.Revocation{{JTI: "local", ExpiresAt: t0.Add(time.Hour)}}, t0)
	r.merge(nil, t0) // stale store listing
	if !r.revoked("local", t0) {
		t.Error("a stale refresh dropped a local revoke")
	}

	// Expired revocations leave memory.
	r.merge(nil, t0.Add(2*time.Hour))
	if n := r.len(); n != 0 {
		t.Errorf("%d revocations left after all expired", n)
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"ci-runner", "ci-runner", true},
		{"ci-runner", "ci-runner2", false},
		{"repo:acme/*", "repo:acme/payments:ref:refs/heads/main", true},
		{"repo:acme/*:ref:refs/heads/main", "repo:acme/payments:ref:refs/heads/main", true},
		{"repo:acme/*:ref:refs/heads/main", "repo:acme/payments:ref:refs/heads/dev", false},
		{"repo:acme/*", "repo:acmex/payments", false},
		{"*@example.com", "alice@example.com", true},
		{"*@example.com", "alice@example.com.evil", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.s, func(t *testing.T) {
			if got := globMatch(tt.pattern, tt.s); got != tt.want {
				t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
			}
		})
	}
}
